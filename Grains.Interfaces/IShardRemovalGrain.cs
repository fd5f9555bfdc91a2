using Orleans.Concurrency;

namespace PR2;

/// <summary>
/// A shard's removal (key = shard code), once <see cref="IDirectoryGrain.RemoveShard"/> began it: moves it through its
/// states (<see cref="ShardRemoval"/>) as far as it can, and says what it waits for. It keeps nothing of its own:
/// everything is derived again from the shard's directory record and its databases, so a silo lost in any state costs
/// one round. Every silo's agent supervisor wakes it while the removal is not over.
/// </summary>
public interface IShardRemovalGrain : IGrainWithIntegerKey
{
    /// <summary>Runs the removal as far as it can go now and returns where it stands.</summary>
    Task<ShardRemovalStatus> Advance();

    /// <summary><see cref="Advance"/> without waiting for it (the supervisor's round).</summary>
    [OneWay]
    Task Wake();
}
