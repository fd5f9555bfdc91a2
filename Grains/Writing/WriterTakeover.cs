using Npgsql;
using PR2.Grains.Replication;
using PR2.Grains.Storage;

namespace PR2.Grains.Writing;

/// <summary>
/// How a new writer takes a shard over before its first acknowledgement: it picks a term above every epoch it can read,
/// fences the reachable replicas with it (<see cref="JournalWriter.FenceAsync"/>), and its primary takes every entry the
/// other fenced replicas hold. For <c>Quorum</c>/<c>All</c> it must fence and gather from <see cref="MustReach"/>
/// replicas: enough to meet every set of replicas an earlier writer's acknowledgement was counted on. A fenced replica
/// takes no acknowledged copy of an older term after its fence (the replication gate checks), so the gathered primary
/// holds every entry an earlier writer acknowledged, and its clock, moved past every imported stamp (the Lamport receive
/// rule), stamps the new writer's entries above all of them.
/// </summary>
public static class WriterTakeover
{
    /// <summary>
    /// How many members a new writer must fence and gather from (a joining replica never counted toward an ack: it does
    /// not count here either). For <c>Primary</c> (one copy) meeting every earlier ack would take every replica, which
    /// would stop writes whenever one is down: it fences and gathers what it reaches.
    /// </summary>
    public static int MustReach(ShardReplicaSet set) => set.RequiredCopies > 1 ? set.Members.Count - set.RequiredCopies + 1 : 1;

    /// <summary>Fences <paramref name="replicas"/> with <paramref name="term"/> in parallel, each given <paramref name="timeout"/>; returns the ones fenced.</summary>
    public static async Task<List<int>> FenceAsync(ShardReplicaSet set, IEnumerable<int> replicas, long term, TimeSpan timeout)
    {
        var fenced = await Task.WhenAll(replicas.Select(async index =>
        {
            try
            {
                using var cancel = new CancellationTokenSource(timeout);
                return await JournalWriter.FenceAsync(set.Replicas[index], term, cancel.Token).WaitAsync(cancel.Token) ? index : -1;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
            {
                return -1;
            }
        }));
        return [.. fenced.Where(i => i >= 0)];
    }

    /// <summary>
    /// Copies into <paramref name="primary"/> every entry the other <paramref name="fenced"/> replicas hold, within
    /// <paramref name="timeout"/>; returns the replicas, the primary included, it gathered from.
    /// </summary>
    public static async Task<List<int>> GatherAsync(ShardReplicaSet set, int primary, IEnumerable<int> fenced, TimeSpan timeout, Action<int, Exception>? failed = null)
    {
        List<int> gathered = [primary];
        using var deadline = new CancellationTokenSource(timeout);
        // Members first: a slow joining replica must not use up the deadline a member needs (only members count).
        foreach (var other in fenced.Where(i => i != primary).OrderBy(i => set.IsMember(i) ? 0 : 1))
        {
            try
            {
                await GatherOneAsync(set.Replicas[other], set.Replicas[primary], deadline.Token).WaitAsync(deadline.Token);
                gathered.Add(other);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
            {
                failed?.Invoke(other, e);
            }
        }

        return gathered;
    }

    // Fenced, the replica takes nothing more from older writers: what it holds now is what the primary must hold. A push
    // gives way when the primary changed under it (its own writer committed): push again until the primary holds it all.
    private static async Task GatherOneAsync(NpgsqlDataSource from, NpgsqlDataSource primary, CancellationToken cancellationToken)
    {
        var wanted = await VersionVector.ReadAsync(from, cancellationToken);
        while (true)
        {
            await ReplicaSync.PushAllAsync(from, primary, cancellationToken: cancellationToken);
            var held = await VersionVector.ReadAsync(primary, cancellationToken);
            if (wanted.Positions.All(p => held[p.Key] >= p.Value))
            {
                return;
            }
        }
    }
}
