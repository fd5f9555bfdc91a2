using System.Diagnostics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using PR2.Client;

namespace PR2.Bench;

/// <summary>
/// PR2 through the Orleans client: N writers each sending to its own actor (insert, then modifies), each
/// call awaited for its acknowledgement, and the same with every message inserting a new actor (pr2-insert); then an open-loop run at a fixed offered rate for ack latency
/// and projection lag (ack until the records agent's mark covers the entry).
/// </summary>
/// <paramref name="suffix"/> names its rows apart when a second silo runs the same rows with another setting (--overlap-ab).
internal sealed class Pr2Path(SiloProcess silo, IReadOnlyDictionary<int, NpgsqlDataSource> shards, string suffix = "") : IAsyncDisposable
{
    private IHost? _client;

    public Pr2Client Client => _client!.Services.GetRequiredService<Pr2Client>();

    public IClusterClient Cluster => _client!.Services.GetRequiredService<IClusterClient>();

    public async Task ConnectAsync()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Pr2:Client:Gateways:0"] = $"127.0.0.1:{silo.GatewayPort}" });
        builder.AddPr2Client();
        _client = builder.Build();
        await _client.StartAsync();
    }

    public async Task RunClosedLoopAsync(Runner runner, IReadOnlyList<int> writerCounts)
    {
        foreach (var shardCount in new[] { 1, 3 })
        {
            foreach (var writers in writerCounts)
            {
                var run = Guid.NewGuid().ToString("N")[..6];
                await runner.MeasureAsync("pr2" + suffix, shardCount, writers, 1, async (w, n) =>
                    await Client.SendAsync(1 + (w % shardCount), $"bench/{run}-{w}", n == 0 ? MessageKind.Insert : MessageKind.Modify, Payload.Json(w, n)));
            }
        }
    }

    /// <summary>
    /// Every message creates an actor (new orders, say): each is one the shard's writer has never written. First inserts
    /// go through the shard's insert path and activate no actor grain, so these rows leave no activations behind.
    /// </summary>
    public async Task RunInsertRowsAsync(Runner runner, IReadOnlyList<int> writerCounts)
    {
        foreach (var writers in writerCounts)
        {
            var run = Guid.NewGuid().ToString("N")[..6];
            await runner.MeasureAsync("pr2-insert", 1, writers, 1, async (w, n) =>
                await Client.SendAsync(1, $"new/{run}-{w}-{n}", MessageKind.Insert, Payload.Json(w, n)));
        }
    }

    /// <summary>
    /// The floor under any PR2 write: one Orleans call per message with no database work (the shard writer's primary,
    /// which it holds in memory; an actor's GetRecord now probes the journal for what atomic batches wrote). PR2's write
    /// rate cannot exceed it.
    /// </summary>
    public async Task RunCallFloorAsync(Runner runner, IReadOnlyList<int> writerCounts)
    {
        var writer = Cluster.GetGrain<IShardWriterGrain>(1);
        foreach (var writers in writerCounts)
        {
            await runner.MeasureAsync("orleans-call", 1, writers, 1, async (_, _) => await writer.GetPrimary());
        }
    }

    /// <summary>
    /// Atomic batches of <paramref name="size"/> messages over 64 actors of shard 1 per batcher (inserts, then modifies):
    /// the like-for-like peer of raw-batch (rows per transaction) and Marten's bulk append (events per session).
    /// </summary>
    public async Task RunBatchRowsAsync(Runner runner, IReadOnlyList<int> batcherCounts, int size = 100)
    {
        foreach (var batchers in batcherCounts)
        {
            var run = Guid.NewGuid().ToString("N")[..6];
            await runner.MeasureAsync("pr2-batch" + suffix, 1, batchers, size, async (w, n) =>
            {
                var messages = new Message[size];
                for (var i = 0; i < size; i++)
                {
                    // Each batcher its own 64 actors; the first batch inserts them, every later message modifies.
                    var slot = ((n * size) + i) % 64;
                    var first = n * size + i < 64;
                    messages[i] = new Message(MessageIds.New(), "bench", new ActorRef(1, $"lot/{run}-{w}-{slot}"),
                        first ? MessageKind.Insert : MessageKind.Modify, Payload.Json(w, n));
                }

                await Client.SendBatchAsync(1, messages);
            });
        }
    }

    /// <summary>
    /// Offered load at <paramref name="rate"/> messages/s on shard 1 for <paramref name="duration"/>: latency from the
    /// scheduled send time. Modifies of 1,000 actors, or with <paramref name="newActors"/> an insert to a new actor each.
    /// </summary>
    public async Task<ResultRow> RunOpenLoopAsync(ResourceMeter meter, int rate, TimeSpan duration, string path = "pr2-open-loop",
        Action<double>? memorySample = null, bool newActors = false, int shard = 1, Func<CancellationToken, Task>? alongside = null)
    {
        const int Actors = 1000;
        var run = Guid.NewGuid().ToString("N")[..6];
        // Created, then read once each: a first insert does not activate its actor, and the actor's first use reads its
        // journal. Without the read, the first 0.2 s of the window would activate all 1,000 at once (measured: p99 over
        // 300 ms for the whole 30 s run); the row measures modifies of actors in use, the insert rows measure creation.
        await Parallel.ForEachAsync(Enumerable.Range(0, Actors), new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (a, _) =>
        {
            await Client.SendAsync(shard, $"open/{run}-{a}", MessageKind.Insert, Payload.Json(a, 0));
            await Client.GetRecordAsync(shard, $"open/{run}-{a}");
        });

        Console.Write($"  {path,-13} offered {rate}/s for {duration.TotalSeconds:0} s ");
        var marks = new List<(long Ticks, long Mark)>();
        using var stopMonitor = new CancellationTokenSource();
        // The projection lag is read on shard 1's one replica only (a moving primary has no one place to read it).
        var monitor = shard == 1 ? MonitorMarkAsync(shards[1], marks, stopMonitor.Token) : Task.CompletedTask;
        var longRun = duration >= TimeSpan.FromMinutes(1);
        var perSecond = longRun && shard == 1 ? SecondSamples.RunAsync(shards[1], stopMonitor.Token) : null;
        var beside = alongside?.Invoke(stopMonitor.Token) ?? Task.CompletedTask;
        var before = meter.CpuSeconds();
        var walBefore = await meter.WalBytesAsync();
        var total = (long)(rate * duration.TotalSeconds);
        var acks = new List<(long ScheduledTicks, long AckTicks, long Position)>((int)Math.Min(total, int.MaxValue));

        // Sends in flight (the loop counts as one until it has issued the last), and a signal when none is left. Finished
        // sends are not kept: a 5-minute soak makes 1.5 million, and holding them grew this process's heap, and its
        // garbage collections, for the whole run.
        long inFlight = 1;
        var allDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        long errors = 0;
        var peak = 0.0;
        var clock = Stopwatch.StartNew();
        var nextSecond = 1;
        for (long k = 0; k < total; k++)
        {
            var due = TimeSpan.FromSeconds((double)k / rate);
            // Read once: the clock moves between a check and a second read.
            if (due - clock.Elapsed is { Ticks: > 0 } wait)
            {
                await Task.Delay(wait);
            }

            if (clock.Elapsed.TotalSeconds >= nextSecond)
            {
                nextSecond++;
                var memory = meter.SiloMemoryMiB();
                peak = Math.Max(peak, memory);
                memorySample?.Invoke(memory);
                Console.Write('.');
            }

            var scheduled = Stopwatch.GetTimestamp() - (clock.Elapsed - due).Ticks * Stopwatch.Frequency / TimeSpan.TicksPerSecond;
            Interlocked.Increment(ref inFlight);
            _ = newActors ? SendOneAsync($"open/{run}-new-{k}", MessageKind.Insert, k, scheduled) : SendOneAsync($"open/{run}-{k % Actors}", MessageKind.Modify, k, scheduled);
        }

        SendFinished();
        await allDone.Task;
        var elapsed = clock.Elapsed;
        await Task.Delay(500);
        await stopMonitor.CancelAsync();
        await monitor;
        await beside;
        var seconds = perSecond is null ? null : await perSecond;
        var after = meter.CpuSeconds();
        var walAfter = await meter.WalBytesAsync();

        var latencies = acks.Select(a => Stopwatch.GetElapsedTime(a.ScheduledTicks, a.AckTicks).TotalMilliseconds).Order().ToArray();
        var markTicks = marks.Select(m => m.Ticks).ToArray();
        var markValues = marks.Select(m => m.Mark).ToArray();
        var lags = acks.Select(a => ProjectionLagMs(markTicks, markValues, a.AckTicks, a.Position)).Where(l => l >= 0).Order().ToArray();
        double At(double[] sorted, double q) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)(q * sorted.Length))];
        var perThousand = 1000.0 / Math.Max(1, acks.Count);
        var row = new ResultRow(path, 1, Actors, acks.Count, elapsed.TotalSeconds, acks.Count / elapsed.TotalSeconds,
            At(latencies, 0.5), At(latencies, 0.95), At(latencies, 0.99), errors,
            (after.Client - before.Client) * perThousand, (after.Silo - before.Silo) * perThousand, (after.Postgres - before.Postgres) * perThousand,
            peak, (walAfter - walBefore) / (double)Math.Max(1, acks.Count), rate, At(lags, 0.5), At(lags, 0.99));
        Console.WriteLine($" {row.MessagesPerSecond,9:N0} msg/s  p50 {row.P50Ms,6:N2} ms  p99 {row.P99Ms,7:N2} ms  lag p99 {row.ProjectionLagP99Ms,6:N1} ms{(errors > 0 ? $"  errors {errors}" : "")}");
        if (seconds is not null)
        {
            // Where a long run's tail comes from: its slowest seconds, by when the messages were due, with what the
            // server's WAL fsyncs and this process's collections took around them.
            var start = acks.Count == 0 ? 0 : acks.Min(a => a.ScheduledTicks);
            var startedAt = DateTime.UtcNow - Stopwatch.GetElapsedTime(start);
            var slowest = acks
                .GroupBy(a => (a.ScheduledTicks - start) / Stopwatch.Frequency)
                .Select(g => (Second: g.Key, Worst: g.Max(a => Stopwatch.GetElapsedTime(a.ScheduledTicks, a.AckTicks).TotalMilliseconds)))
                .OrderByDescending(s => s.Worst)
                .Take(5);
            Console.WriteLine($"  slowest seconds (a typical 2 s: {seconds.Typical()}):");
            foreach (var (second, worst) in slowest)
            {
                var middle = start + (second * Stopwatch.Frequency) + (Stopwatch.Frequency / 2);
                Console.WriteLine($"    {startedAt.AddSeconds(second):HH:mm:ss} UTC, +{second} s: {worst:N0} ms; {seconds.Around(middle)}");
            }
        }

        return row;

        async Task SendOneAsync(string actor, MessageKind kind, long k, long scheduledTicks)
        {
            try
            {
                var ack = await Client.SendAsync(shard, actor, kind, Payload.Json((int)(k % Actors), k));
                var now = Stopwatch.GetTimestamp();
                lock (acks)
                {
                    acks.Add((scheduledTicks, now, ack.Position));
                }
            }
            catch (Exception)
            {
                Interlocked.Increment(ref errors);
            }
            finally
            {
                SendFinished();
            }
        }

        void SendFinished()
        {
            if (Interlocked.Decrement(ref inFlight) == 0)
            {
                allDone.TrySetResult();
            }
        }
    }

    /// <summary>
    /// The open-loop load on <see cref="MovingShard"/> (two replicas) twice: as is, then with its primary moved from one
    /// replica to the other every quarter of the run. Prints the moves' times and the second row's throughput and p99
    /// against the first's (issue 24's goal: at most 20% lower throughput, p99 under 100 ms, at 5,000 msg/s offered).
    /// </summary>
    public async Task RunMoveRowsAsync(Runner runner, ResourceMeter meter, int rate, TimeSpan duration, int rounds)
    {
        // Unrecorded first: the shard's first seconds (its writer, pools, anti-entropy starting) are not what a move costs.
        await RunOpenLoopAsync(meter, rate, TimeSpan.FromSeconds(Math.Min(5, duration.TotalSeconds)), "(warm-up)", shard: MovingShard);
        // Alternating, so that a slow stretch of a shared machine does not fall on one kind of row only.
        for (var round = 1; round <= rounds; round++)
        {
            var steady = await RunOpenLoopAsync(meter, rate, duration, "pr2-2-replicas", shard: MovingShard);
            runner.Add(steady);
            var moves = new List<double>();
            var refused = 0;
            var moving = await RunOpenLoopAsync(meter, rate, duration, "pr2-moving", shard: MovingShard,
                alongside: stop => MoveEveryAsync(duration / 4, moves, () => refused++, stop));
            runner.Add(moving);
            var sorted = moves.Order().ToList();
            Console.WriteLine($"  round {round}: moves {moves.Count} ({refused} refused), median {(sorted.Count == 0 ? double.NaN : sorted[sorted.Count / 2]):N0} ms, " +
                $"longest {(sorted.Count == 0 ? double.NaN : sorted[^1]):N0} ms; while moving: throughput {moving.MessagesPerSecond / steady.MessagesPerSecond:0.00}x, " +
                $"p99 {moving.P99Ms:N1} ms (steady {steady.P99Ms:N1} ms), errors {moving.Errors}");
        }
    }

    // Moves the primary to the other replica every period until stopped; times each move.
    private async Task MoveEveryAsync(TimeSpan period, List<double> moves, Action refused, CancellationToken stop)
    {
        period = period < TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : period;
        try
        {
            while (true)
            {
                await Task.Delay(period, stop);
                var target = await Cluster.GetGrain<IShardWriterGrain>(MovingShard).GetPrimary() == 0 ? 1 : 0;
                var clock = Stopwatch.StartNew();
                try
                {
                    await Client.MovePrimaryAsync(MovingShard, target, stop);
                    moves.Add(clock.Elapsed.TotalMilliseconds);
                }
                catch (Pr2Exception e) when (e.IsRetriable)
                {
                    refused();
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The load ended.
        }
    }

    /// <summary>The benchmark's shard with two replicas, whose primary <see cref="RunMoveRowsAsync"/> moves.</summary>
    public const int MovingShard = 4;

    public async ValueTask DisposeAsync()
    {
        if (_client is not null)
        {
            await _client.StopAsync();
            _client.Dispose();
        }
    }

    // Polls the records agent's mark on shard 1 every couple of milliseconds.
    private static async Task MonitorMarkAsync(NpgsqlDataSource shard1, List<(long, long)> marks, CancellationToken stop)
    {
        await using var command = shard1.CreateCommand("select coalesce((select position from pr2_agent_mark where agent = 'records' and shard = 1), 0)");
        while (!stop.IsCancellationRequested)
        {
            var mark = (long)(await command.ExecuteScalarAsync(CancellationToken.None))!;
            marks.Add((Stopwatch.GetTimestamp(), mark));
            try
            {
                await Task.Delay(2, stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    // Time from the acknowledgement until the first sample whose mark covers the position (0 if it already did).
    // Marks never go backwards, so the first covering sample is found by binary search.
    private static double ProjectionLagMs(long[] ticks, long[] marks, long ackTicks, long position)
    {
        int low = 0, high = marks.Length;
        while (low < high)
        {
            var middle = (low + high) / 2;
            if (marks[middle] >= position)
            {
                high = middle;
            }
            else
            {
                low = middle + 1;
            }
        }

        return low == marks.Length ? -1 : Math.Max(0, Stopwatch.GetElapsedTime(ackTicks, ticks[low]).TotalMilliseconds);
    }
}
