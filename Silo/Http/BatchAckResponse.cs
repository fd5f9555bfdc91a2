namespace PR2.Silo.Http;

/// <summary>An acknowledged atomic batch: all its entries committed durably together.</summary>
/// <param name="Duplicate">True when this batch was accepted before: these are its first acknowledgements again.</param>
/// <param name="Acks">Each message's acknowledgement, in batch order.</param>
/// <param name="Token">The read token covering the whole batch.</param>
public sealed record BatchAckResponse(bool Duplicate, IReadOnlyList<WriteAckResponse> Acks, string Token)
{
    public static BatchAckResponse From(BatchAck ack) => new(ack.Duplicate, [.. ack.Acks.Select(WriteAckResponse.From)], ack.Token.ToString());
}
