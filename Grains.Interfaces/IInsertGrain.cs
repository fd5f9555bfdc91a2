namespace PR2;

/// <summary>
/// The way in for first inserts, one per shard (integer key: the shard code): it appends an insert as the receiving
/// actor's version 1 without activating that actor, so a shard taking a stream of new actors (orders, events) does
/// not hold, and later collect, an activation for each. When the actor has entries after all, the message goes to
/// the actor (<see cref="IActorGrain"/>), which refuses it or answers a retry, as it would have directly.
/// </summary>
public interface IInsertGrain : IGrainWithIntegerKey
{
    /// <summary>Same contract as <see cref="IActorGrain.Send"/> for an insert (any other message is passed to its actor).</summary>
    Task<WriteAck> Insert(Message message);
}
