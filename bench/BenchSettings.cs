namespace PR2.Bench;

/// <summary>What one benchmark run measures, from the command line.</summary>
internal sealed record BenchSettings(
    bool Short,
    IReadOnlyList<int> Writers,
    IReadOnlyList<int> Batchers,
    TimeSpan Duration,
    TimeSpan Warmup,
    int OfferedRate,
    TimeSpan OpenLoopDuration,
    TimeSpan Soak,
    bool SoakInserts,
    bool OverlapAb,
    IReadOnlyList<string> Paths,
    string OutputPath,
    int Repeats,
    string? PostgresConnectionString,
    int BackupEntries,
    int RebuildRate = 0)
{
    public const string Usage = """
        PR2 benchmark: raw PostgreSQL, Marten and PR2 side by side on one PostgreSQL server.
          --short              under a minute: 64 writers, 3 s per row (also the CI smoke check)
          --full               minutes: 1, 16, 64, 256 writers, 10 s per row, 3 repeats (the default)
          --writers 1,16,64    writer counts to run
          --batchers 1,4,16    concurrent batchers for the batch rows: raw-batch (100 rows per transaction), marten-batch
                               (100 events per session) and pr2-batch (atomic batches of 100 over 64 actors)
          --seconds <n>        seconds per measured row
          --rate <n>           offered load for the open-loop latency run (default 5000/s)
          --soak <seconds>     also run the open-loop load this long and report silo memory growth
          --soak-inserts       the soak inserts a new actor with every message instead of modifying 1,000
          --overlap-ab         a second silo, on databases of its own, with Pr2:Write:OverlapCommits on (the first one
                               with it off) runs the pr2 and pr2-batch rows after the first: rows pr2-overlap and
                               pr2-batch-overlap, and the summary gives their ratios to the rows without
          --paths raw,marten,pr2,anti-entropy,delivery,move,backup,rebuild  which paths to run (default all; --short leaves out
                               delivery, the journal stream against the polling feed); pr2-batch runs only PR2's batch
                               rows; move runs the open-loop load on a two-replica shard with and without moves of its
                               primary; backup fills that shard, then runs the load beside a backup, a restore
                               and a third replica added from empty until it serves; rebuild fills it too (once for
                               both) and runs the load beside a rebuild of its records view
          --backup-entries <n> entries in the shard the backup and rebuild rows fill (default 1,000,000; 20,000 with --short)
          --rebuild-rate <n>   the silo's Pr2:Projections:RebuildEntriesPerSecond (per replica; default 0, no limit)
          --postgres <conn>    use this PostgreSQL server instead of starting a throwaway one
          --repeats <n>        run the raw, Marten and PR2 rows n times, alternating (default 3 with --full, 1 with
                               --short); the summary's ratios are medians of the repeats after the first (cold) one
          --out <path>         JSON results (default bench/results/latest.json)
          --help               this text
        """;

    public static BenchSettings Parse(string[] args)
    {
        var isShort = args.Contains("--short");
        var settings = new BenchSettings(
            isShort,
            isShort ? [64] : [1, 16, 64, 256],
            isShort ? [4] : [1, 4, 16],
            TimeSpan.FromSeconds(isShort ? 3 : 10),
            TimeSpan.FromSeconds(isShort ? 0.5 : 2),
            5000,
            TimeSpan.FromSeconds(isShort ? 3 : 30),
            TimeSpan.Zero,
            false,
            false,
            isShort ? ["raw", "marten", "pr2", "anti-entropy", "move", "backup", "rebuild"] : ["raw", "marten", "pr2", "anti-entropy", "delivery", "move", "backup", "rebuild"],
            Path.Combine("bench", "results", "latest.json"),
            isShort ? 1 : 3,
            null,
            isShort ? 20_000 : 1_000_000);
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            settings = args[i] switch
            {
                "--short" or "--full" => settings,
                "--writers" => settings with { Writers = [.. Next().Split(',').Select(int.Parse)] },
                "--batchers" => settings with { Batchers = [.. Next().Split(',').Select(int.Parse)] },
                "--seconds" => settings with { Duration = TimeSpan.FromSeconds(double.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture)) },
                "--rate" => settings with { OfferedRate = int.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture) },
                "--soak" => settings with { Soak = TimeSpan.FromSeconds(double.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture)) },
                "--soak-inserts" => settings with { SoakInserts = true },
                "--overlap-ab" => settings with { OverlapAb = true },
                "--paths" => settings with { Paths = Next().Split(',') },
                "--postgres" => settings with { PostgresConnectionString = Next() },
                "--out" => settings with { OutputPath = Next() },
                "--backup-entries" => settings with { BackupEntries = int.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture) },
                "--rebuild-rate" => settings with { RebuildRate = int.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture) },
                "--repeats" => settings with { Repeats = Math.Max(1, int.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture)) },
                _ => throw new ArgumentException($"unknown option {args[i]}\n{Usage}"),
            };
        }

        return settings;
    }
}
