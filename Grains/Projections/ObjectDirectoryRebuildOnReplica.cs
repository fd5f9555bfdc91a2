using Npgsql;
using PR2.Grains.Agents;
using PR2.Grains.Storage;

namespace PR2.Grains.Projections;

/// <summary>
/// The object directory's rebuild (<see cref="ObjectDirectoryRebuild"/>) in shard 0's replica <paramref name="home"/>: it
/// folds every shard's journals, and is canceled when shard 0's primary moves away from <paramref name="home"/> (the live
/// directory is then read, and kept, elsewhere).
/// </summary>
internal sealed class ObjectDirectoryRebuildOnReplica(int home, ShardRegistry shards, IAgentFaultInjector faults, int batchSize, IGrainFactory grains)
    : IProjectionRebuild
{
    private static readonly TimeSpan PrimaryTimeout = TimeSpan.FromSeconds(2);

    public Task<long> StartAsync(NpgsqlDataSource replica, bool restart) => ObjectDirectoryRebuild.StartAsync(replica, restart);

    public Task<long?> CancelAsync(NpgsqlDataSource replica) => ObjectDirectoryRebuild.CancelAsync(replica);

    public Task<ProjectionReplicaStatus> StatusAsync(NpgsqlDataSource replica) => ObjectDirectoryRebuild.StatusAsync(shards, home);

    // Made anew each turn: shards and replicas may have been added or removed since.
    public Task<IReadOnlyList<AgentRunner>> FoldsAsync(IReadOnlyList<AgentRunner>? last, Func<IJournalAgent, AgentRunner> run) =>
        Task.FromResult(ObjectDirectoryRebuild.Folds(shards, faults, home, batchSize));

    public async Task<(SwapOutcome Outcome, long Position, string? Busy)> TrySwapAsync(NpgsqlDataSource replica)
    {
        var primary = await CurrentPrimary.AskAsync(grains, shards.Get(0), PrimaryTimeout);
        if (primary != home)
        {
            await ObjectDirectoryRebuild.CancelAsync(replica,
                $"shard 0's primary moved to replica {primary} during the rebuild, and the directory is kept there; start it again");
            return (SwapOutcome.NotBuilding, 0, null);
        }

        return await ObjectDirectoryRebuild.TrySwapAsync(replica, shards, home);
    }
}
