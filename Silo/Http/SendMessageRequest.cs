using System.Text.Json;

namespace PR2.Silo.Http;

/// <summary>The body of <c>POST /v1/shards/{shard}/actors/{type}/{key}/messages</c>.</summary>
public sealed class SendMessageRequest
{
    /// <summary><c>insert</c>, <c>modify</c> or <c>cancel</c>.</summary>
    public required string Kind { get; init; }

    /// <summary>A JSON object: the new record for insert, a merge patch for modify; omit for cancel.</summary>
    public JsonElement? Body { get; init; }

    /// <summary>Send the same id again to retry safely; a new one is made when omitted.</summary>
    public Guid? MessageId { get; init; }

    /// <summary>Refuse unless the record is at this version.</summary>
    public long? ExpectedVersion { get; init; }

    /// <summary>
    /// What the caller says of itself (a front end, a job): recorded after its authenticated name, as
    /// <c>http:{name}/{sender}</c>. The sender is always <c>http:{name}</c>, whatever is given here.
    /// </summary>
    public string? Sender { get; init; }
}
