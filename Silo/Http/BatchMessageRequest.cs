using System.Text.Json;

namespace PR2.Silo.Http;

/// <summary>One message of <see cref="SendBatchRequest"/>.</summary>
public sealed class BatchMessageRequest
{
    /// <summary>The actor, <c>type/key</c>, in the batch's shard.</summary>
    public required string Actor { get; init; }

    /// <summary><c>insert</c>, <c>modify</c> or <c>cancel</c>.</summary>
    public required string Kind { get; init; }

    /// <summary>A JSON object: the new record for insert, a merge patch for modify; omit for cancel.</summary>
    public JsonElement? Body { get; init; }

    /// <summary>Give every message its id to retry the batch safely; a new one is made when omitted.</summary>
    public Guid? MessageId { get; init; }

    /// <summary>Refuse unless the record is at this version when this message's turn comes.</summary>
    public long? ExpectedVersion { get; init; }
}
