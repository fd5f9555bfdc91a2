using Orleans.Concurrency;

namespace PR2;

/// <summary>
/// Runs one agent over one shard's journal on one replica; key <c>"{agent}/{shard}@{replica}"</c>, e.g. <c>records/1@0</c>.
/// Woken by the shard's writer after each commit, by a timer as a fallback, and by every silo's agent
/// supervisor, so it runs wherever the cluster places it and survives silo restarts.
/// </summary>
public interface IAgentGrain : IGrainWithStringKey
{
    /// <summary>Asks the agent to catch up with the journal; returns at once.</summary>
    [OneWay]
    Task Wake();

    /// <summary>Catches up with the journal as it is now and returns the mark reached.</summary>
    Task<long> CatchUp();
}
