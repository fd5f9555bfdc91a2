namespace PR2.Silo.Http;

/// <summary>The body of <c>POST /v1/shards/{shard}/batches</c>: an atomic batch of messages to actors of the shard.</summary>
public sealed class SendBatchRequest
{
    /// <summary>The messages, in the order they are judged and written (at most <c>Pr2:Write:MaxBatchMessages</c>).</summary>
    public required IReadOnlyList<BatchMessageRequest> Messages { get; init; }

    /// <summary>What the caller says of itself, recorded after its authenticated name (as for one message).</summary>
    public string? Sender { get; init; }
}
