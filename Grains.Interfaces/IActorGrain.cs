namespace PR2;

/// <summary>
/// One actor: keyed by the shard code (integer part) and the actor id <c>type/key</c> (key extension).
/// It is the actor's queue: calls are processed one at a time, in arrival order, so each accepted message
/// gets the next version (1, 2, 3 ...). Validation happens here, before anything is written.
/// </summary>
public interface IActorGrain : IGrainWithIntegerCompoundKey
{
    /// <summary>
    /// Validates the message against the actor's record and, when accepted, appends it to the shard's journal.
    /// Returns only after the entry committed durably. Refusals throw <see cref="Pr2Exception"/> and write nothing.
    /// </summary>
    Task<WriteAck> Send(Message message);

    /// <summary>The actor's current record as this actor knows it (all accepted entries folded).</summary>
    Task<ActorRecord> GetRecord();
}
