using Npgsql;
using PR2.Grains.Agents;
using PR2.Grains.Records;

namespace PR2.Grains.Projections;

/// <summary>The records view's rebuild (<see cref="RecordsRebuild"/>) on replica <paramref name="replicaIndex"/> of <paramref name="shard"/>.</summary>
internal sealed class RecordsRebuildOnReplica(int shard, int replicaIndex) : IProjectionRebuild
{
    public Task<long> StartAsync(NpgsqlDataSource replica, bool restart) => RecordsRebuild.StartAsync(replica, shard, restart);

    public Task<long?> CancelAsync(NpgsqlDataSource replica) => RecordsRebuild.CancelAsync(replica, shard);

    public Task<ProjectionReplicaStatus> StatusAsync(NpgsqlDataSource replica) => RecordsRebuild.StatusAsync(replica, shard, replicaIndex);

    // The fold (on the shadow table) never changes while the rebuild runs: kept from turn to turn.
    public Task<IReadOnlyList<AgentRunner>> FoldsAsync(IReadOnlyList<AgentRunner>? last, Func<IJournalAgent, AgentRunner> run) =>
        Task.FromResult(last ?? [run(new RecordsProjector(table: RecordStore.Next))]);

    public Task<(SwapOutcome Outcome, long Position, string? Busy)> TrySwapAsync(NpgsqlDataSource replica) =>
        RecordsRebuild.TrySwapAsync(replica, shard, replicaIndex);
}
