using Orleans.Concurrency;

namespace PR2;

/// <summary>
/// Anti-entropy for one shard (key = shard code): repeatedly pushes, for every ordered pair of its
/// replicas, the entries one holds above the other's version vector. Runs on a timer with back-off when
/// nothing moves; woken by the writer after commits. A replica that does not answer is skipped and retried.
/// </summary>
public interface IAntiEntropyGrain : IGrainWithIntegerKey
{
    [OneWay]
    Task Wake();

    /// <summary>Runs passes until one moves nothing; returns the entries moved.</summary>
    Task<long> SyncNow();
}
