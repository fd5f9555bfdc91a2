using System.Text.Json.Nodes;

namespace PR2.Silo.Http;

/// <summary>A record as JSON: its state is the JSON object itself, stamps are <c>counter@shard</c>.</summary>
public sealed record RecordView(int Shard, string Actor, string Status, long Version, JsonNode? State, string? FirstStamp, string? LastStamp)
{
    public static RecordView From(ActorRecord record) => new(
        record.Actor.Shard,
        record.Actor.ActorId,
        record.Status.ToString().ToLowerInvariant(),
        record.Version,
        record.State is null ? null : JsonNode.Parse(record.State),
        record.FirstStamp?.ToString(),
        record.LastStamp?.ToString());
}
