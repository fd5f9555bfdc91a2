using System.Text.Json.Nodes;

namespace PR2.Silo.Http;

/// <summary>A journal entry as JSON.</summary>
public sealed record JournalEntryView(
    long Position, Guid MessageId, string Stamp, string Actor, string Kind, long Version, JsonNode? Body,
    string Sender, string? CausedBy, DateTimeOffset RecordedAt)
{
    public static JournalEntryView From(JournalEntry entry) => new(
        entry.Position,
        entry.MessageId,
        entry.Stamp.ToString(),
        entry.Actor.ActorId,
        entry.Kind.ToString().ToLowerInvariant(),
        entry.Version,
        string.IsNullOrEmpty(entry.Body) ? null : JsonNode.Parse(entry.Body),
        entry.Sender,
        entry.CausedBy?.ToString(),
        entry.RecordedAt);
}
