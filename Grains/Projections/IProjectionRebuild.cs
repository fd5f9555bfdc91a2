using Npgsql;
using PR2.Grains.Agents;

namespace PR2.Grains.Projections;

/// <summary>
/// One replica's rebuild of one projection, as <see cref="ProjectionRebuildGrain"/> drives it: the records view's
/// (<see cref="RecordsRebuildOnReplica"/>), a rule's views' (<see cref="RuleViewRebuildOnReplica"/>) or, in shard 0, the
/// object directory's (<see cref="ObjectDirectoryRebuildOnReplica"/>). The grain picks one when it activates, so that what
/// differs between them is said here once rather than at every step of its loop.
/// The replica's database is passed to each call: the grain finds it anew each time (the topology may have changed).
/// </summary>
internal interface IProjectionRebuild
{
    /// <summary>Starts the rebuild, or finds the one in progress (unless <paramref name="restart"/>); its generation.</summary>
    Task<long> StartAsync(NpgsqlDataSource replica, bool restart);

    /// <summary>Cancels the rebuild in progress; the generation canceled, or null when none was building.</summary>
    Task<long?> CancelAsync(NpgsqlDataSource replica);

    Task<ProjectionReplicaStatus> StatusAsync(NpgsqlDataSource replica);

    /// <summary>
    /// The folds to run this turn, given the last turn's (<paramref name="last"/>, null after a restart) and how to run an
    /// agent over this replica's journal (<paramref name="run"/>); none when there is nothing to fold with (the swap then
    /// ends the rebuild). One for a view of one journal; the object directory's follows many.
    /// </summary>
    Task<IReadOnlyList<AgentRunner>> FoldsAsync(IReadOnlyList<AgentRunner>? last, Func<IJournalAgent, AgentRunner> run);

    /// <summary>One attempt to swap the rebuilt projection in (see <see cref="RecordsRebuild.TrySwapAsync"/>).</summary>
    Task<(SwapOutcome Outcome, long Position, string? Busy)> TrySwapAsync(NpgsqlDataSource replica);
}
