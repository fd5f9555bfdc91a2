using System.Diagnostics;
using PR2.Client;

namespace PR2.Bench;

/// <summary>
/// Backup, restore and a replica added, under load (issue 24): the two-replica shard is filled with <c>entries</c>
/// entries by atomic batches, then the open-loop load runs four times: as is, beside a backup of the secondary replica,
/// beside a restore of that backup over the secondary (<c>--replace</c>) followed by its catch-up, and beside a third
/// replica added from empty (<c>pr2 replicas add</c>) until it serves; the rebuild path runs it beside a rebuild of the
/// records view on both replicas (<c>pr2 projections rebuild</c>), then of the object directory. Prints the operations' times and rates and each loaded
/// row's throughput and p99 against the steady one.
/// </summary>
internal static class BackupRows
{
    /// <summary>The configuration key (under <c>Pr2:Connections:</c>) of the replica the last row adds.</summary>
    public const string AddedReplica = "bench-added";

    private const int BatchSize = 100;

    public static async Task RunAsync(Pr2Path pr2, Runner runner, ResourceMeter meter, int rate, TimeSpan duration, int entries, IReadOnlyCollection<string> paths)
    {
        var client = pr2.Client;
        var shard = Pr2Path.MovingShard;
        var fill = Stopwatch.StartNew();
        var run = Guid.NewGuid().ToString("N")[..6];
        var batches = (entries + BatchSize - 1) / BatchSize;
        await Parallel.ForEachAsync(Enumerable.Range(0, batches), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (b, _) =>
        {
            // 10,000 actors, each inserted by its first message and modified after.
            var messages = Enumerable.Range(0, BatchSize).Select(i =>
            {
                var n = (b * BatchSize) + i;
                return new Message(MessageIds.New(), "bench", new ActorRef(shard, $"fill/{run}-{n % 10_000}"),
                    n < 10_000 ? MessageKind.Insert : MessageKind.Modify, Payload.Json(n % 64, n));
            }).ToList();
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    await client.SendBatchAsync(shard, messages);
                    return;
                }
                catch (Pr2Exception e) when (e.IsRetriable && attempt < 20)
                {
                    await Task.Delay(200);
                }
            }
        });
        Console.WriteLine($"  backup rows: filled shard {shard} with {entries:N0} entries in {fill.Elapsed.TotalSeconds:N0} s " +
            $"({entries / fill.Elapsed.TotalSeconds:N0}/s); waiting for its second replica");
        await WaitCaughtUpAsync(client, shard, TimeSpan.FromMinutes(10));

        var steady = await pr2.RunOpenLoopAsync(meter, rate, duration, "pr2-2-replicas", shard: shard);
        runner.Add(steady);

        if (paths.Contains("rebuild"))
        {
            await RebuildRowAsync(pr2, runner, meter, rate, duration, steady);
        }

        if (!paths.Contains("backup"))
        {
            return;
        }

        var primary = await pr2.Cluster.GetGrain<IShardWriterGrain>(shard).GetPrimary();
        var secondary = primary == 0 ? 1 : 0;
        var directory = Path.Combine(Path.GetTempPath(), "pr2-bench-backup", run);
        try
        {
            BackupManifest? manifest = null;
            double backupSeconds = 0;
            var backingUp = await pr2.RunOpenLoopAsync(meter, rate, duration, "pr2-backup", shard: shard, alongside: async stop =>
            {
                var clock = Stopwatch.StartNew();
                manifest = await client.BackupAsync(shard, directory, secondary, cancellationToken: CancellationToken.None);
                backupSeconds = clock.Elapsed.TotalSeconds;
            });
            runner.Add(backingUp);
            var bytes = manifest!.Tables.Sum(t => t.Bytes);
            Console.WriteLine($"  backup of replica {secondary}: {manifest.Position:N0} entries, {bytes / 1048576.0:N0} MiB in {backupSeconds:N1} s " +
                $"({manifest.Position / backupSeconds:N0} entries/s); load beside it: throughput {backingUp.MessagesPerSecond / steady.MessagesPerSecond:0.00}x, " +
                $"p99 {backingUp.P99Ms:N1} ms (steady {steady.P99Ms:N1} ms), errors {backingUp.Errors}");

            double restoreSeconds = 0, catchUpSeconds = 0;
            var restoring = await pr2.RunOpenLoopAsync(meter, rate, duration, "pr2-restore", shard: shard, alongside: async stop =>
            {
                var clock = Stopwatch.StartNew();
                await client.RestoreAsync(shard, secondary, directory, replace: true, cancellationToken: CancellationToken.None);
                restoreSeconds = clock.Elapsed.TotalSeconds;
                await WaitCaughtUpAsync(client, shard, TimeSpan.FromMinutes(5));
                catchUpSeconds = clock.Elapsed.TotalSeconds - restoreSeconds;
            });
            runner.Add(restoring);
            Console.WriteLine($"  restore of replica {secondary}: {manifest.Position:N0} entries in {restoreSeconds:N1} s " +
                $"({manifest.Position / restoreSeconds:N0} entries/s), caught up {catchUpSeconds:N1} s later; load beside it: " +
                $"throughput {restoring.MessagesPerSecond / steady.MessagesPerSecond:0.00}x, p99 {restoring.P99Ms:N1} ms, errors {restoring.Errors}");

            double addSeconds = 0;
            long held = 0;
            var adding = await pr2.RunOpenLoopAsync(meter, rate, duration, "pr2-add-replica", shard: shard, alongside: async stop =>
            {
                var clock = Stopwatch.StartNew();
                var progress = new LastProgress();
                await client.AddReplicaAsync(shard, "Pr2:Connections:" + AddedReplica, progress, cancellationToken: CancellationToken.None);
                addSeconds = clock.Elapsed.TotalSeconds;
                held = progress.Last?.Rows ?? 0;
            });
            runner.Add(adding);
            Console.WriteLine($"  replica added: {held:N0} entries taken from empty in {addSeconds:N1} s ({held / addSeconds:N0} entries/s) until it served; " +
                $"load beside it: throughput {adding.MessagesPerSecond / steady.MessagesPerSecond:0.00}x, p99 {adding.P99Ms:N1} ms, errors {adding.Errors}");
        }
        finally
        {
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }
        }
    }

    // The records view rebuilt on both replicas beside the load (the journal folded again into shadows, then swapped in),
    // then the object directory.
    private static async Task RebuildRowAsync(Pr2Path pr2, Runner runner, ResourceMeter meter, int rate, TimeSpan duration, ResultRow steady)
    {
        double seconds = 0;
        ProjectionStatus? status = null;
        var rebuilding = await pr2.RunOpenLoopAsync(meter, rate, duration, "pr2-rebuild-records", shard: Pr2Path.MovingShard, alongside: async stop =>
        {
            var clock = Stopwatch.StartNew();
            status = await pr2.Client.RebuildProjectionAsync(Pr2Path.MovingShard, "records", cancellationToken: CancellationToken.None);
            seconds = clock.Elapsed.TotalSeconds;
        });
        runner.Add(rebuilding);
        var folded = status!.Replicas.Sum(r => r.SwappedPosition);
        Console.WriteLine($"  records view rebuilt on {status.Replicas.Count} replicas: {folded:N0} positions folded in {seconds:N1} s " +
            $"({folded / seconds:N0}/s, swapped in at {string.Join(", ", status.Replicas.Select(r => r.SwappedPosition.ToString("N0", System.Globalization.CultureInfo.InvariantCulture)))}); " +
            $"load beside it: throughput {rebuilding.MessagesPerSecond / steady.MessagesPerSecond:0.00}x, p99 {rebuilding.P99Ms:N1} ms (steady {steady.P99Ms:N1} ms), errors {rebuilding.Errors}");

        // The object directory rebuilt in shard 0 from every replica's journal of every shard (inserts and cancels only).
        var directory = await pr2.RunOpenLoopAsync(meter, rate, duration, "pr2-rebuild-directory", shard: Pr2Path.MovingShard, alongside: async stop =>
        {
            var clock = Stopwatch.StartNew();
            status = await pr2.Client.RebuildProjectionAsync(0, "object-directory", cancellationToken: CancellationToken.None);
            seconds = clock.Elapsed.TotalSeconds;
        });
        runner.Add(directory);
        var positions = status!.Replicas.Sum(r => r.SwappedPosition);
        Console.WriteLine($"  object directory rebuilt: {positions:N0} positions of every journal in {seconds:N1} s ({positions / seconds:N0}/s); " +
            $"load beside it: throughput {directory.MessagesPerSecond / steady.MessagesPerSecond:0.00}x, p99 {directory.P99Ms:N1} ms (steady {steady.P99Ms:N1} ms), errors {directory.Errors}");
    }

    // The last figures a long operation reported (the entries the added replica held when it served).
    private sealed class LastProgress : IProgress<TransferProgress>
    {
        public TransferProgress? Last { get; private set; }

        public void Report(TransferProgress value) => Last = value;
    }

    private static async Task WaitCaughtUpAsync(Pr2Client client, int shard, TimeSpan deadline)
    {
        var until = DateTime.UtcNow + deadline;
        while (!(await client.GetStatusAsync()).Shards.Single(s => s.Shard == shard).Replicas.All(r => r.Reachable && r.Behind == 0))
        {
            if (DateTime.UtcNow > until)
            {
                throw new TimeoutException($"shard {shard}'s replicas did not catch up within {deadline.TotalMinutes:0} minutes");
            }

            await Task.Delay(500);
        }
    }
}
