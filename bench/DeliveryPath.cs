using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using Orleans.Streams;
using PR2.Client;

namespace PR2.Bench;

/// <summary>
/// Committed entries reaching subscribers, at an offered rate on shard 1: the journal stream (entries pushed by the silo
/// to Orleans client subscribers), the watch built on it (<see cref="Pr2Client.WatchAsync(int, WatchPosition?, string?, string?, TimeSpan?, CancellationToken)"/>,
/// what SSE and <c>pr2 watch</c> serve: records, caught up from the journal then pushed), and the polling feed the
/// watch used before (pages of the change feed, a pause of 100 ms when a page is empty), with 1 and 10 subscribers,
/// and none for the write rate without them. Latency is from the scheduled send to delivery at the first subscriber
/// (the send time travels in the body); rows: writers = subscribers.
/// </summary>
internal static class DeliveryPath
{
    private const int Actors = 200;

    public static async Task RunAsync(Runner runner, Pr2Client client, IClusterClient cluster, ResourceMeter meter, int rate, TimeSpan duration)
    {
        foreach (var (mode, subscribers) in new[] { ("stream", 0), ("stream", 1), ("watch", 1), ("feed", 1), ("stream", 10), ("watch", 10), ("feed", 10) })
        {
            runner.Add(await RunOneAsync(client, cluster, meter, mode, subscribers, rate, duration));
        }
    }

    private static async Task<ResultRow> RunOneAsync(Pr2Client client, IClusterClient cluster, ResourceMeter meter, string mode, int subscribers, int rate, TimeSpan duration)
    {
        var type = "d" + Guid.NewGuid().ToString("N")[..8];
        await Parallel.ForEachAsync(Enumerable.Range(0, Actors), new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (a, _) =>
            await client.SendAsync(1, $"{type}/{a}", MessageKind.Insert, """{"t": 0}"""));

        var path = subscribers == 0 ? "no-subscriber" : $"{mode}-delivery";
        var delays = new ConcurrentQueue<double>();
        using var stop = new CancellationTokenSource();
        var handles = new List<StreamSubscriptionHandle<JournalEntry>>();
        var feeds = new List<Task>();
        for (var i = 0; i < subscribers; i++)
        {
            var first = i == 0;
            if (mode == "stream")
            {
                var stream = cluster.GetStreamProvider(Pr2Streams.ProviderName).GetStream<JournalEntry>(Pr2Streams.OfType(1, type));
                handles.Add(await stream.SubscribeAsync((entry, _) =>
                {
                    if (first)
                    {
                        Record(delays, entry.Body);
                    }

                    return Task.CompletedTask;
                }));
            }
            else
            {
                var from = await cluster.GetGrain<IChangeFeedGrain>(1).Now();
                var changes = mode == "watch"
                    ? client.WatchAsync(1, from, type, cancellationToken: stop.Token)
                    : PollFeedAsync(cluster.GetGrain<IChangeFeedGrain>(1), from, type, stop.Token);
                feeds.Add(Task.Run(async () =>
                {
                    try
                    {
                        await foreach (var change in changes)
                        {
                            if (first)
                            {
                                Record(delays, change.Record.State ?? "{}");
                            }
                        }
                    }
                    catch (OperationCanceledException)
                    {
                    }
                }));
            }
        }

        Console.Write($"  {path,-16} {subscribers,2} subscribers, offered {rate}/s for {duration.TotalSeconds:0} s ");
        var before = meter.CpuSeconds();
        var total = (long)(rate * duration.TotalSeconds);
        long acked = 0, errors = 0;
        var sends = new List<Task>((int)total);
        var clock = Stopwatch.StartNew();
        for (long k = 0; k < total; k++)
        {
            var due = TimeSpan.FromSeconds((double)k / rate);
            // Read once: the clock moves between a check and a second read.
            if (due - clock.Elapsed is { Ticks: > 0 } wait)
            {
                await Task.Delay(wait);
            }

            var scheduled = Stopwatch.GetTimestamp() - ((clock.Elapsed - due).Ticks * Stopwatch.Frequency / TimeSpan.TicksPerSecond);
            sends.Add(SendAsync($"{type}/{k % Actors}", $$"""{"t": {{scheduled}}, "k": {{k}}}"""));
        }

        await Task.WhenAll(sends);
        var elapsed = clock.Elapsed;
        // Deliveries still on their way: wait for them (bounded) before reading the figures.
        var deadline = Stopwatch.StartNew();
        while (subscribers > 0 && delays.Count < acked && deadline.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(100);
        }

        var after = meter.CpuSeconds();
        await stop.CancelAsync();
        await Task.WhenAll(feeds);
        foreach (var handle in handles)
        {
            await handle.UnsubscribeAsync();
        }

        var sorted = delays.Order().ToArray();
        double At(double q) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)(q * sorted.Length))];
        var perThousand = 1000.0 / Math.Max(1, acked);
        var missing = subscribers > 0 ? Math.Max(0, acked - sorted.Length) : 0;
        var row = new ResultRow(path, 1, subscribers, acked, elapsed.TotalSeconds, acked / elapsed.TotalSeconds,
            At(0.5), At(0.95), At(0.99), errors + missing,
            (after.Client - before.Client) * perThousand, (after.Silo - before.Silo) * perThousand, (after.Postgres - before.Postgres) * perThousand,
            meter.SiloMemoryMiB(), 0, rate);
        Console.WriteLine($" {row.MessagesPerSecond,9:N0} msg/s  delivery p50 {row.P50Ms,7:N1} ms  p99 {row.P99Ms,7:N1} ms  silo cpu {row.CpuSiloPer1K:N3} s/1k" +
            (missing > 0 ? $"  undelivered {missing}" : "") + (errors > 0 ? $"  errors {errors}" : ""));
        return row;

        async Task SendAsync(string actor, string body)
        {
            try
            {
                await client.SendAsync(1, actor, MessageKind.Modify, body);
                Interlocked.Increment(ref acked);
            }
            catch (Exception)
            {
                Interlocked.Increment(ref errors);
            }
        }
    }

    private static void Record(ConcurrentQueue<double> delays, string json)
    {
        using var document = JsonDocument.Parse(json);
        if (document.RootElement.TryGetProperty("t", out var t) && t.GetInt64() > 0)
        {
            delays.Enqueue(Stopwatch.GetElapsedTime(t.GetInt64()).TotalMilliseconds);
        }
    }

    // The watch as it was before the journal stream: change-feed pages, a 100 ms pause whenever one comes back empty.
    private static async IAsyncEnumerable<RecordChange> PollFeedAsync(IChangeFeedGrain feed, WatchPosition from, string type,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var place = from;
        while (!cancellationToken.IsCancellationRequested)
        {
            var page = await feed.ReadAfter(place, type, null, 100).WaitAsync(cancellationToken);
            foreach (var change in page.Changes)
            {
                yield return change;
            }

            if (page.Changes.Count == 0)
            {
                await Task.Delay(100, cancellationToken);
            }

            place = page.Next!;
        }
    }
}
