namespace PR2;

/// <summary>
/// The acknowledgement of an atomic batch, sent only after all its entries committed durably together.
/// </summary>
/// <param name="Acks">Each message's acknowledgement, in batch order: position, stamp and the actor's version after it.</param>
/// <param name="Duplicate">True when this batch had been accepted before: these are its first acknowledgements again.</param>
[GenerateSerializer, Immutable, Alias("pr2.batch-ack.v1")]
public sealed record BatchAck(
    [property: Id(0)] WriteAck[] Acks,
    [property: Id(1)] bool Duplicate = false)
{
    /// <summary>A read token covering every message of the batch.</summary>
    public ReadToken Token => Acks.Aggregate(ReadToken.Empty, (token, ack) => token.Merge(ack.Token));
}
