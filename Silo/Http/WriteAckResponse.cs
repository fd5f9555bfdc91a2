namespace PR2.Silo.Http;

/// <summary>An acknowledged message: its journal entry committed durably.</summary>
/// <param name="MessageId">The message acknowledged.</param>
/// <param name="Shard">Its shard.</param>
/// <param name="Actor">The actor it changed.</param>
/// <param name="Stamp">Its Lamport stamp, <c>counter@shard</c> (usable as <c>asOf</c>).</param>
/// <param name="Position">Its position in the shard's journal on the primary that wrote it.</param>
/// <param name="Version">The record's version after it.</param>
/// <param name="Duplicate">True when this MessageId was accepted before: this is the first acknowledgement again.</param>
/// <param name="Token">The read token covering this write (also in the <c>Pr2-Read-Token</c> header, merged with the caller's).</param>
public sealed record WriteAckResponse(Guid MessageId, int Shard, string Actor, string Stamp, long Position, long Version, bool Duplicate, string Token)
{
    public static WriteAckResponse From(WriteAck ack) =>
        new(ack.MessageId, ack.Actor.Shard, ack.Actor.ActorId, ack.Stamp.ToString(), ack.Position, ack.Version, ack.Duplicate, ack.Token.ToString());
}
