using System.Diagnostics;

namespace PR2.Client;

/// <summary>
/// Removes a shard and follows its removal to the end (<see cref="Pr2Client.RemoveShardAsync"/>): the directory records it
/// begun, and the removal runs through its states (sealing, draining, releasing, removed) on its own; this follows it,
/// reporting each state with what it waits for.
/// </summary>
internal static class ShardRemovals
{
    private static readonly TimeSpan PollEvery = TimeSpan.FromSeconds(1);

    public static async Task<ShardRemovalStatus> RemoveAsync(IClusterClient cluster, int shard, bool wait, TimeSpan stallTimeout,
        IProgress<ShardRemovalStatus>? progress, CancellationToken cancellationToken)
    {
        await UnavailableCluster.Answer(() => cluster.GetGrain<IDirectoryGrain>(0).RemoveShard(shard), cancellationToken);
        var removal = cluster.GetGrain<IShardRemovalGrain>(shard);
        var sinceChange = Stopwatch.StartNew();
        string? state = null;
        while (true)
        {
            ShardRemovalStatus status;
            try
            {
                status = await UnavailableCluster.Answer(() => removal.Advance(), cancellationToken);
            }
            catch (Pr2Exception e) when (wait && e.Code == ErrorCode.Unavailable && sinceChange.Elapsed <= stallTimeout)
            {
                // A run that outlasted the call's bound (a seal waiting for a replica), or a silo lost under it: the removal
                // goes on by itself; ask again.
                await Task.Delay(PollEvery, cancellationToken);
                continue;
            }

            progress?.Report(status);
            if (status.Removal.State != state)
            {
                state = status.Removal.State;
                sinceChange.Restart();
            }

            if (status.Removal.State == ShardRemoval.Removed || !wait)
            {
                return status;
            }

            if (sinceChange.Elapsed > stallTimeout)
            {
                throw new Pr2Exception(ErrorCode.ShardUnavailable,
                    $"the removal of shard {shard} has been {state} for {stallTimeout.TotalSeconds:0} s, waiting for: {string.Join("; ", status.WaitingFor)}; " +
                    "it goes on by itself: run the command again to follow it");
            }

            await Task.Delay(PollEvery, cancellationToken);
        }
    }
}
