namespace PR2;

/// <summary>
/// The acknowledgement of an accepted message, sent only after its journal entry committed durably.
/// </summary>
/// <param name="MessageId">The message acknowledged.</param>
/// <param name="Actor">The actor it changed.</param>
/// <param name="Stamp">Its Lamport stamp.</param>
/// <param name="Position">Its position in the shard's journal (contiguous, starting at 1).</param>
/// <param name="Version">The actor's record version after it (1 for the insert).</param>
/// <param name="Duplicate">True when this MessageId had been accepted before and this is the first acknowledgement again.</param>
/// <param name="Origin">The replica that first wrote the entry (its origin id).</param>
/// <param name="OriginPosition">The entry's position in that replica's own sequence.</param>
[GenerateSerializer, Immutable, Alias("pr2.write-ack.v1")]
public sealed record WriteAck(
    [property: Id(0)] Guid MessageId,
    [property: Id(1)] ActorRef Actor,
    [property: Id(2)] LamportStamp Stamp,
    [property: Id(3)] long Position,
    [property: Id(4)] long Version,
    [property: Id(5)] bool Duplicate = false,
    [property: Id(6)] Guid Origin = default,
    [property: Id(7)] long OriginPosition = 0)
{
    /// <summary>A read token covering this write: pass it to a session read to read your own write.</summary>
    public ReadToken Token => ReadToken.Of(Actor.Shard, Origin, OriginPosition);
}
