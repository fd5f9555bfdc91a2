using Orleans.Concurrency;

namespace PR2;

/// <summary>
/// Runs one projection's rebuild on one replica; key <c>"{projection}/{shard}@{replica}"</c> (<c>records</c>, or a rule's
/// agent name <c>rule-{name}</c>). Its state lives in the replica's
/// database (sql/019), so any activation goes on from where the last one stopped; every silo's agent supervisor wakes it.
/// </summary>
public interface IProjectionRebuildGrain : IGrainWithStringKey
{
    /// <summary>
    /// Starts a rebuild (or finds the one in progress, unless <paramref name="restart"/>) and returns its generation; the fold
    /// runs on after the call.
    /// </summary>
    Task<long> Start(bool restart = false);

    /// <summary>
    /// Cancels the rebuild in progress (its shadow dropped, the live view kept); returns the generation canceled, or null
    /// when none was building.
    /// </summary>
    Task<long?> Cancel();

    /// <summary>Where the rebuild stands.</summary>
    Task<ProjectionReplicaStatus> Status();

    /// <summary>Goes on with a rebuild in progress, if there is one; returns at once.</summary>
    [OneWay]
    Task Wake();
}
