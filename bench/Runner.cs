namespace PR2.Bench;

/// <summary>Measures one row: a closed-loop run with CPU and memory read before and after.</summary>
internal sealed class Runner(BenchSettings settings, ResourceMeter meter)
{
    // What the rows measure CPU and memory with: the silo they run against (--overlap-ab has two).
    public ResourceMeter Meter { get; set; } = meter;

    public List<ResultRow> Rows { get; } = [];

    /// <summary>Which repeat of the run this is (1: the first); every row measured is tagged with it.</summary>
    public int Repeat { get; set; } = 1;

    /// <summary>Adds a row measured elsewhere (open loop, delivery), tagged with the current repeat.</summary>
    public ResultRow Add(ResultRow row)
    {
        row = row with { Repeat = Repeat };
        Rows.Add(row);
        return row;
    }

    /// <param name="path">Row name, e.g. <c>raw-batch</c>.</param>
    /// <param name="shards">Shards written (1 for the non-PR2 paths).</param>
    /// <param name="writers">Concurrent writers.</param>
    /// <param name="messagesPerSend">Messages one send writes (a batch counts its rows).</param>
    /// <param name="send">Sends one message (or batch) for writer w, its n-th.</param>
    public async Task<ResultRow> MeasureAsync(string path, int shards, int writers, int messagesPerSend, Func<int, long, Task> send)
    {
        Console.Write($"  {path,-13} shards={shards} writers={writers,-4} ");
        var before = Meter.CpuSeconds();
        var walBefore = await Meter.WalBytesAsync();
        var peak = Meter.SiloMemoryMiB();
        var (sends, elapsed, latencies, errors) = await ClosedLoop.RunAsync(writers, settings.Warmup, settings.Duration, send, count =>
        {
            peak = Math.Max(peak, Meter.SiloMemoryMiB());
            Console.Write('.');
        });
        var after = Meter.CpuSeconds();
        var walAfter = await Meter.WalBytesAsync();
        var (_, p50, p95, p99) = latencies.Summarize();
        var messages = sends * messagesPerSend;
        // CPU and WAL include the warm-up and wind-down, so they are divided by all messages sent, measured or not.
        var allMessages = Math.Max(1, messages * (settings.Duration + settings.Warmup) / settings.Duration);
        var perThousand = 1000.0 / allMessages;
        var row = new ResultRow(path, shards, writers, messages, elapsed.TotalSeconds, messages / elapsed.TotalSeconds, p50, p95, p99, errors,
            (after.Client - before.Client) * perThousand, (after.Silo - before.Silo) * perThousand, (after.Postgres - before.Postgres) * perThousand, peak,
            (walAfter - walBefore) / allMessages);
        Console.WriteLine($" {row.MessagesPerSecond,9:N0} msg/s  p50 {p50,6:N2} ms  p99 {p99,7:N2} ms{(errors > 0 ? $"  errors {errors}" : "")}");
        return Add(row);
    }
}
