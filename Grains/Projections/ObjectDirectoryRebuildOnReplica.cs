using Npgsql;
using PR2.Grains.Agents;
using PR2.Grains.Storage;

namespace PR2.Grains.Projections;

/// <summary>
/// The object directory's rebuild (<see cref="ObjectDirectoryRebuild"/>) in shard 0's replica <paramref name="home"/>: it
/// folds every shard's journals, and is canceled when shard 0's primary moves away from <paramref name="home"/> (the live
/// directory is then read, and kept, elsewhere).
/// </summary>
internal sealed class ObjectDirectoryRebuildOnReplica(int home, ShardRegistry shards, TopologyFollower topology, IAgentFaultInjector faults, int batchSize,
    IGrainFactory grains) : IProjectionRebuild
{
    private static readonly TimeSpan PrimaryTimeout = TimeSpan.FromSeconds(2);

    // Shards the live directory has rows of that this silo could not learn (the directory does not list them, or their
    // replicas are not configured here): the swap keeps their rows as they are.
    private readonly HashSet<int> _leftAlone = [];

    public Task<long> StartAsync(NpgsqlDataSource replica, bool restart) => ObjectDirectoryRebuild.StartAsync(replica, restart);

    public Task<long?> CancelAsync(NpgsqlDataSource replica) => ObjectDirectoryRebuild.CancelAsync(replica);

    public Task<ProjectionReplicaStatus> StatusAsync(NpgsqlDataSource replica) => ObjectDirectoryRebuild.StatusAsync(shards, home);

    // Made anew each turn: shards and replicas may have been added or removed since. None once the primary moved away (the
    // rebuild is canceled: a fold of every journal for a directory nobody reads would be wasted).
    public async Task<IReadOnlyList<AgentRunner>> FoldsAsync(IReadOnlyList<AgentRunner>? last, Func<IJournalAgent, AgentRunner> run) =>
        await MovedAsync() ? [] : ObjectDirectoryRebuild.Folds(shards, faults, home, batchSize);

    public async Task<(SwapOutcome Outcome, long Position, string? Busy)> TrySwapAsync(NpgsqlDataSource replica)
    {
        if (await MovedAsync())
        {
            return (SwapOutcome.NotBuilding, 0, null);
        }

        IReadOnlyCollection<int> unknown = [];
        var swap = await ObjectDirectoryRebuild.TrySwapAsync(replica, shards, home, _leftAlone, found => unknown = found);
        if (unknown.Count > 0 && !await LearnAsync(unknown))
        {
            // Not to be learned here: the swap leaves their rows alone from now on.
            _leftAlone.UnionWith(unknown);
        }

        return swap;
    }

    // Whether shard 0's primary is elsewhere now; if so the rebuild here is canceled, saying why.
    private async Task<bool> MovedAsync()
    {
        var primary = await CurrentPrimary.AskAsync(grains, shards.Get(0), PrimaryTimeout);
        if (primary == home)
        {
            return false;
        }

        await ObjectDirectoryRebuild.CancelAsync(shards.Get(0).Replicas[home], MovedAway($"replica {primary}"));
        return true;
    }

    private static string MovedAway(string where) =>
        $"shard 0's primary moved to {where} during the rebuild, and the directory is kept there; start it again";

    // Shards (or replicas) the live directory follows that this silo did not know of when the swap looked; whether this silo
    // knows more of them now (a shard the directory does not list stays unknown: its rows are left as they are).
    private async Task<bool> LearnAsync(IReadOnlyCollection<int> unknown)
    {
        var learned = false;
        foreach (var shard in unknown)
        {
            var replicas = shards.Contains(shard) ? shards.Get(shard).Replicas.Count : 0;
            try
            {
                if (await topology.KnowsAsync(shard))
                {
                    await topology.RefreshShardAsync(shard);
                    learned |= shards.Get(shard).Replicas.Count > replicas;
                }
            }
            catch (Pr2Exception)
            {
                // This silo cannot follow it (a configuration key it lacks): not learned.
            }
        }

        return learned;
    }
}
