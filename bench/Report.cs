namespace PR2.Bench;

/// <summary>The side-by-side table and the ratios the targets are stated in.</summary>
internal static class Report
{
    public static void Print(IReadOnlyList<ResultRow> rows, IReadOnlyList<int> writerCounts, IReadOnlyList<int> batcherCounts)
    {
        Console.WriteLine();
        Console.WriteLine($"{"path",-14}{"rep",4}{"shards",6}{"writers",8}{"msg/s",11}{"p50 ms",9}{"p95 ms",9}{"p99 ms",9}{"cpu s/1k: client",18}{"silo",7}{"pg",7}{"silo MiB",10}{"WAL B/msg",10}{"lag p99",9}");
        foreach (var r in rows.Where(r => r.Path != "anti-entropy"))
        {
            Console.WriteLine($"{r.Path,-14}{r.Repeat,4}{r.Shards,6}{r.Writers,8}{r.MessagesPerSecond,11:N0}{r.P50Ms,9:N2}{r.P95Ms,9:N2}{r.P99Ms,9:N2}" +
                $"{r.CpuClientPer1K,18:N3}{r.CpuSiloPer1K,7:N3}{r.CpuPostgresPer1K,7:N3}{r.SiloPeakMiB,10:N0}{r.WalBytesPerMessage,10:N0}{(r.ProjectionLagP99Ms is { } lag ? $"{lag,9:N1}" : ""),9}");
        }

        foreach (var r in rows.Where(r => r.Path == "anti-entropy"))
        {
            Console.WriteLine($"anti-entropy catch-up: {r.Messages:N0} entries in {r.Seconds:0.0} s = {r.MessagesPerSecond:N0} entries/s " +
                $"(cpu s/1k: client {r.CpuClientPer1K:N3}, pg {r.CpuPostgresPer1K:N3}; WAL {r.WalBytesPerMessage:N0} B/entry)");
        }

        Console.WriteLine();
        var repeats = rows.Count == 0 ? 1 : rows.Max(r => r.Repeat);
        Console.WriteLine(repeats > 1
            ? $"ratios: medians of the warm repeats (2..{repeats}; the first, cold one left out)"
            : "ratios: one repeat (cold): --repeats 3 for medians of warm repeats");
        foreach (var writers in writerCounts.Distinct())
        {
            double? Rate(string path, int shards = 1) => Median(rows, path, shards, writers);
            var pr2 = Rate("pr2");
            var pr2Three = Rate("pr2", 3);
            var batch = Rate("raw-batch");
            var marten = Rate("marten");
            Console.WriteLine($"writers {writers,3}: PR2/raw-batch {Ratio(pr2, batch)}  PR2/Marten {Ratio(pr2, marten)}  PR2(3 shards)/Marten {Ratio(pr2Three, marten)}");
            if (Rate("pr2-overlap") is { } overlap)
            {
                Console.WriteLine($"             overlapped commits: PR2/Marten {Ratio(overlap, marten)}, on/off {Ratio(overlap, pr2)}; 3 shards on/off {Ratio(Rate("pr2-overlap", 3), pr2Three)}");
            }
        }

        // Batch against batch: 100 messages per atomic batch, 100 rows per transaction, 100 events per Marten session.
        foreach (var batchers in batcherCounts.Distinct())
        {
            double? Rate(string path) => Median(rows, path, 1, batchers);
            var pr2Batch = Rate("pr2-batch");
            Console.WriteLine($"batchers {batchers,3}: pr2-batch/raw-batch {Ratio(pr2Batch, Rate("raw-batch"))}  pr2-batch/marten-batch {Ratio(pr2Batch, Rate("marten-batch"))}");
            if (Rate("pr2-batch-overlap") is { } overlap)
            {
                Console.WriteLine($"             overlapped commits: pr2-batch/raw-batch {Ratio(overlap, Rate("raw-batch"))}, on/off {Ratio(overlap, pr2Batch)}");
            }
        }
    }

    /// <summary>The median msg/s of a row's warm repeats (every repeat but the first), or of its one repeat.</summary>
    public static double? Median(IReadOnlyList<ResultRow> rows, string path, int shards, int writers)
    {
        var mine = rows.Where(r => r.Path == path && r.Shards == shards && r.Writers == writers).OrderBy(r => r.Repeat).ToList();
        var warm = mine.Count > 1 ? mine.Skip(1).ToList() : mine;
        if (warm.Count == 0)
        {
            return null;
        }

        var sorted = warm.Select(r => r.MessagesPerSecond).Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static string Ratio(double? a, double? b) => a is { } x && b is { } y && y > 0 ? $"{x / y,6:N2}x" : "     -";
}
