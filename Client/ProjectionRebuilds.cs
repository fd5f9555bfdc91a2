using System.Diagnostics;

namespace PR2.Client;

/// <summary>
/// Rebuilds a shard's projection (the records view, a rule's views) and follows it until every replica has swapped it in
/// (<see cref="Pr2Client.RebuildProjectionAsync"/>). Progress is the journal positions folded of the replicas' heads.
/// </summary>
internal static class ProjectionRebuilds
{
    private static readonly TimeSpan PollEvery = TimeSpan.FromMilliseconds(500);

    public static async Task<ProjectionStatus> RebuildAsync(IClusterClient cluster, int shard, string projection, bool restart, TimeSpan stallTimeout,
        IProgress<TransferProgress>? progress, CancellationToken cancellationToken)
    {
        var projections = cluster.GetGrain<IProjectionsGrain>(shard);
        var status = await UnavailableCluster.Answer(() => projections.Rebuild(projection, restart), cancellationToken);
        // Each replica's rebuild started (or in progress) now; done once each has swapped in this generation or a later one.
        var generations = status.Replicas.ToDictionary(r => r.Replica, r => r.Generation);
        var started = Stopwatch.StartNew();
        var lastChange = started.Elapsed;
        var folded = new Dictionary<int, long>();
        while (true)
        {
            // Progress counts each replica's own folding: a replica swapped in counts what it folded, and its live mark
            // moving on with writes is not progress of the ones still building. Replicas added since the start are not
            // waited for.
            var followed = status.Replicas.Where(r => generations.ContainsKey(r.Replica)).ToList();
            var building = followed.Where(r => !status.SwappedSince(r.Replica, generations[r.Replica])).ToList();
            var done = followed.Except(building).ToList();
            if (building.FirstOrDefault(r => r.State == "canceled" && r.Generation == generations[r.Replica]) is { } canceled)
            {
                throw new Pr2Exception(ErrorCode.OperationCanceled,
                    $"shard {shard}: the rebuild of {projection} was canceled on replica {canceled.Replica} ({canceled.Error ?? "pr2 projections cancel"}); its live view was kept. " +
                    "Replicas that had swapped theirs in keep the rebuilt view; run the rebuild again if it is still wanted");
            }

            // Restored (a restore brings no rebuild) or removed since (no longer listed): its rebuild ended without a swap.
            var ended = building.FirstOrDefault(r => r.State != "unreachable" && (r.Generation < generations[r.Replica] || r.State == "live"))?.Replica
                ?? generations.Keys.Except(status.Replicas.Select(r => r.Replica)).Cast<int?>().FirstOrDefault();
            if (ended is { } endedReplica)
            {
                throw new Pr2Exception(ErrorCode.ShardUnavailable,
                    $"shard {shard}: replica {endedReplica}'s rebuild of {projection} ended without being swapped in (the replica was restored or removed since); run the command again to rebuild it");
            }

            progress?.Report(new TransferProgress(projection, building.Sum(r => Math.Max(0, r.Folded)) + done.Sum(r => r.SwappedPosition),
                building.Sum(r => Math.Max(r.Head, r.Folded)) + done.Sum(r => r.SwappedPosition), 0, 0, started.Elapsed));
            if (building.Count == 0)
            {
                return status;
            }

            // A fold moving on is progress; so is one starting over (a migration of the view, a new version of the rule).
            if (building.Any(r => r.Folded != folded.GetValueOrDefault(r.Replica, -1)))
            {
                lastChange = started.Elapsed;
            }

            foreach (var replica in building)
            {
                folded[replica.Replica] = replica.Folded;
            }

            if (started.Elapsed - lastChange > stallTimeout)
            {
                var why = string.Join("; ", building.Select(r => $"replica {r.Replica}: {r.State}{(r.Error is null ? "" : $" ({r.Error})")}"));
                throw new Pr2Exception(ErrorCode.ShardUnavailable,
                    $"shard {shard}: the rebuild of {projection} has folded nothing for {stallTimeout.TotalSeconds:0} s ({why}); it goes on where it is: " +
                    $"pr2 projections status {shard} {projection} follows it (running the rebuild again follows it too, and rebuilds again the replicas that are done)");
            }

            await Task.Delay(PollEvery, cancellationToken);
            status = await UnavailableCluster.Answer(() => projections.Status(projection), cancellationToken);
        }
    }
}
