using Npgsql;
using PR2.Grains.Agents;

namespace PR2.Grains.Projections;

/// <summary>
/// The rebuild of a rule's views (<see cref="RuleViewRebuild"/>, projection <paramref name="projection"/>, the rule's agent
/// name) on replica <paramref name="replicaIndex"/> of <paramref name="shard"/>. <paramref name="findRule"/> gives the rule as
/// the silo knows it at each call (null when removed): it may be replaced or removed while the rebuild runs.
/// </summary>
internal sealed class RuleViewRebuildOnReplica(string projection, int shard, int replicaIndex, Func<Task<IJournalAgent?>> findRule) : IProjectionRebuild
{
    public async Task<long> StartAsync(NpgsqlDataSource replica, bool restart) =>
        await RuleViewRebuild.StartAsync(replica, shard, await findRule() ?? throw NoRule(), restart);

    public Task<long?> CancelAsync(NpgsqlDataSource replica) => RuleViewRebuild.CancelAsync(replica, shard, projection);

    public async Task<ProjectionReplicaStatus> StatusAsync(NpgsqlDataSource replica) =>
        await RuleViewRebuild.StatusAsync(replica, shard, replicaIndex, await findRule() ?? throw NoRule());

    // The rule's own code in rebuild mode, made anew each turn (the rule may have been replaced since); null when the rule
    // was removed (the swap then cancels the rebuild).
    public async Task<IReadOnlyList<AgentRunner>> FoldsAsync(IReadOnlyList<AgentRunner>? last, Func<IJournalAgent, AgentRunner> run) =>
        await findRule() is { } rule && RuleViewRebuild.For(rule) is var (_, _, agent) ? [run(agent)] : [];

    public async Task<(SwapOutcome Outcome, long Position, string? Busy)> TrySwapAsync(NpgsqlDataSource replica) =>
        await RuleViewRebuild.TrySwapAsync(replica, shard, replicaIndex, projection, await findRule());

    private Pr2Exception NoRule() => new(ErrorCode.BadMessage, $"shard {shard} has no projection '{projection}' (pr2 projections list {shard} shows them)");
}
