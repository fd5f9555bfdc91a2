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
        long folded = -1;
        while (true)
        {
            var building = status.Replicas.Where(r => generations.ContainsKey(r.Replica) && r.State != "done").ToList();
            var now = status.Replicas.Sum(r => r.State == "unreachable" ? 0 : r.Folded);
            progress?.Report(new TransferProgress(projection, now, status.Replicas.Sum(r => Math.Max(r.Head, r.Folded)), 0, 0, started.Elapsed));
            if (status.SwappedSince(generations))
            {
                return status;
            }

            if (now != folded)
            {
                folded = now;
                lastChange = started.Elapsed;
            }
            else if (started.Elapsed - lastChange > stallTimeout)
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
