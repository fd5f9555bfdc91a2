using System.Diagnostics;

namespace PR2.Client;

/// <summary>
/// Rebuilds a shard's records view and follows it until every replica has swapped its rebuilt view in
/// (<see cref="Pr2Client.RebuildProjectionAsync"/>). Progress is the journal positions folded of the replicas' heads.
/// </summary>
internal static class ProjectionRebuilds
{
    private static readonly TimeSpan PollEvery = TimeSpan.FromMilliseconds(500);

    public static async Task<ProjectionStatus> RebuildAsync(IClusterClient cluster, int shard, string projection, TimeSpan stallTimeout,
        IProgress<TransferProgress>? progress, CancellationToken cancellationToken)
    {
        var projections = cluster.GetGrain<IProjectionsGrain>(shard);
        var status = await UnavailableCluster.Answer(() => projections.Rebuild(projection), cancellationToken);
        // Each replica's rebuild started (or in progress) now; done once each has swapped in this generation or a later one.
        var generations = status.Replicas.ToDictionary(r => r.Replica, r => r.Generation);
        var started = Stopwatch.StartNew();
        var lastChange = started.Elapsed;
        var folded = new Dictionary<int, long>();
        while (true)
        {
            // Progress counts each replica's own folding: a replica swapped in counts what it folded, and its live mark
            // moving on with writes is not progress of the ones still building.
            var building = status.Replicas.Where(r => generations.TryGetValue(r.Replica, out var generation) && !status.SwappedSince(r.Replica, generation)).ToList();
            var done = status.Replicas.Where(r => !building.Contains(r)).ToList();
            progress?.Report(new TransferProgress(projection, building.Sum(r => Math.Max(0, r.Folded)) + done.Sum(r => r.SwappedPosition),
                building.Sum(r => Math.Max(r.Head, r.Folded)) + done.Sum(r => r.SwappedPosition), 0, 0, started.Elapsed));
            if (building.Count == 0)
            {
                return status;
            }

            if (building.Any(r => r.Folded > folded.GetValueOrDefault(r.Replica, -1)))
            {
                lastChange = started.Elapsed;
            }

            foreach (var replica in building)
            {
                folded[replica.Replica] = Math.Max(replica.Folded, folded.GetValueOrDefault(replica.Replica, -1));
            }

            if (started.Elapsed - lastChange > stallTimeout)
            {
                var why = string.Join("; ", building.Select(r => $"replica {r.Replica}: {r.State}{(r.Error is null ? "" : $" ({r.Error})")}"));
                throw new Pr2Exception(ErrorCode.ShardUnavailable,
                    $"shard {shard}: the rebuild of {projection} has folded nothing for {stallTimeout.TotalSeconds:0} s ({why}); it goes on where it is: run the command again to follow it");
            }

            await Task.Delay(PollEvery, cancellationToken);
            status = await UnavailableCluster.Answer(() => projections.Status(projection), cancellationToken);
        }
    }
}
