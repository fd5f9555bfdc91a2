using System.Globalization;

namespace PR2.Bench;

/// <summary>
/// What the throwaway PostgreSQL server logged about checkpoints and autovacuum during a time window, to lay beside a
/// long run's slowest seconds (the server logs each line with its time, as <c>2026-11-26 18:01:30.123 UTC ...</c>).
/// </summary>
internal static class ServerLogEvents
{
    /// <summary>Server settings that make it log what <see cref="Between"/> looks for.</summary>
    public static readonly IReadOnlyDictionary<string, string> Settings = new Dictionary<string, string>
    {
        ["log_checkpoints"] = "on",
        ["log_autovacuum_min_duration"] = "0",
        ["log_line_prefix"] = "'%m '",

        // Times WAL writes and fsyncs in pg_stat_wal, which SecondSamples reads.
        ["track_wal_io_timing"] = "on",
    };

    private static readonly string[] Interesting = ["checkpoint", "automatic vacuum"];

    // Vacuums of the system catalogs are quick and many: they would crowd out the ones of PR2's tables.
    private static readonly string[] Ignored = ["pg_catalog.", "information_schema."];

    /// <summary>The log lines about checkpoints and autovacuum of PR2's tables stamped between <paramref name="from"/> and <paramref name="to"/> (UTC).</summary>
    public static IReadOnlyList<string> Between(string dataDirectory, DateTime from, DateTime to)
    {
        var log = Path.Combine(dataDirectory, "server.log");
        if (!File.Exists(log))
        {
            return [];
        }

        using var stream = new FileStream(log, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        var found = new List<string>();
        while (reader.ReadLine() is { } line)
        {
            if (line.Length > 23
                && DateTime.TryParseExact(line[..23], "yyyy-MM-dd HH:mm:ss.fff", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var at)
                && at >= from && at <= to
                && Interesting.Any(word => line.Contains(word, StringComparison.Ordinal))
                && !Ignored.Any(word => line.Contains(word, StringComparison.Ordinal)))
            {
                found.Add(line.Length > 200 ? line[..200] : line);
            }
        }

        return found;
    }
}
