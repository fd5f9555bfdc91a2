namespace PR2;

/// <summary>Delivers the messages rules wrote to one shard's outbox (key = shard code) to their actors.</summary>
public interface IOutboxRelayGrain : IGrainWithIntegerKey
{
    /// <summary>There may be new messages to deliver.</summary>
    [Orleans.Concurrency.OneWay]
    Task Wake();

    /// <summary>Delivers everything deliverable now; returns how many messages were delivered.</summary>
    Task<int> DeliverNow();
}
