using System.Diagnostics;

namespace PR2.Client;

/// <summary>
/// Adds a replica to a running shard and follows it until it serves (<see cref="Pr2Client.AddReplicaAsync"/>): the directory
/// records it joining, anti-entropy fills it, the writer admits it once it lacks little. Progress is the entries it holds of
/// what the shard's replicas hold.
/// </summary>
internal static class ReplicaJoins
{
    private static readonly TimeSpan PollEvery = TimeSpan.FromMilliseconds(500);

    // What anti-entropy counts as caught up (a replica lacking at most this many entries is "up"), when the writer admits it.
    private const long AdmittedWithin = 1000;

    public static async Task<ShardEntry> AddAsync(IClusterClient cluster, int shard, string connection, TimeSpan stallTimeout,
        IProgress<TransferProgress>? progress, CancellationToken cancellationToken)
    {
        var directory = cluster.GetGrain<IDirectoryGrain>(0);
        var entry = await UnavailableCluster.Answer(() => directory.AddReplica(shard, connection), cancellationToken);
        var index = entry.Connections!.ToList().FindIndex(k => string.Equals(k, connection, StringComparison.OrdinalIgnoreCase));
        var started = Stopwatch.StartNew();
        var lastChange = started.Elapsed;
        long held = -1;
        TimeSpan? caughtUpSince = null;
        async Task<ReplicaStatus?> ReportAsync()
        {
            var status = (await UnavailableCluster.Answer(() => cluster.GetGrain<IStatusGrain>(0).GetStatus(), cancellationToken))
                .Shards.SingleOrDefault(s => s.Shard == shard)?.Replicas.SingleOrDefault(r => r.Index == index);
            if (status is { Reachable: true, Vector: { } vector, Behind: >= 0 })
            {
                var now = vector.Values.Sum();
                if (now != held)
                {
                    held = now;
                    lastChange = started.Elapsed;
                }

                progress?.Report(new TransferProgress("journal", now, now + status.Behind, 0, 0, started.Elapsed));
                caughtUpSince = status.Behind <= AdmittedWithin ? caughtUpSince ?? started.Elapsed : null;
            }

            return status;
        }

        while (entry.Joining?.Contains(index) == true)
        {
            var status = await ReportAsync();
            if (caughtUpSince is { } since && started.Elapsed - since > stallTimeout)
            {
                throw new Pr2Exception(ErrorCode.ShardUnavailable,
                    $"shard {shard}: replica {index} ({connection}) has caught up but has not been admitted for {stallTimeout.TotalSeconds:0} s " +
                    "(the shard's writer refuses it: the silo log says why, 'was not admitted yet'); it stays joining and admission is tried again: run the command again to follow it");
            }

            if (started.Elapsed - lastChange > stallTimeout)
            {
                throw new Pr2Exception(ErrorCode.ShardUnavailable,
                    $"shard {shard}: replica {index} ({connection}) has taken no entries for {stallTimeout.TotalSeconds:0} s " +
                    $"({(status is { Reachable: false } ? $"it does not answer: {status.Error}" : "anti-entropy cannot reach it, or the writer does not admit it")}); " +
                    "it stays joining and anti-entropy goes on: run the command again to follow it");
            }

            await Task.Delay(PollEvery, cancellationToken);
            entry = (await UnavailableCluster.Answer(() => directory.GetShards(), cancellationToken)).SingleOrDefault(s => s.Shard == shard) ?? entry;
        }

        // Where it stands once it serves (a member trails the primary by what the ack policy lets it).
        await ReportAsync();
        return entry;
    }
}
