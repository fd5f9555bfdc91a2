using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace PR2.Client.Cli;

/// <summary>Writes command results: as text for people, or as JSON (<c>--json</c>) for scripts.</summary>
public static class Output
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    public static void WriteJson<T>(TextWriter writer, T value) => writer.WriteLine(JsonSerializer.Serialize(value, Json));

    /// <summary>One JSON object on one line (a stream of them is NDJSON: one line per event).</summary>
    public static void WriteJsonLine<T>(TextWriter writer, T value) => writer.WriteLine(JsonSerializer.Serialize(value, JsonLine));

    private static readonly JsonSerializerOptions JsonLine = new(Json) { WriteIndented = false };

    /// <summary>A record with its state as JSON (not as a string of JSON).</summary>
    public static object ToJson(ActorRecord r) => new
    {
        r.Actor.Shard,
        r.Actor.ActorId,
        r.Status,
        r.Version,
        State = r.State is null ? null : JsonNode.Parse(r.State),
        FirstStamp = r.FirstStamp?.ToString(),
        LastStamp = r.LastStamp?.ToString(),
        r.LastPosition,
    };

    /// <summary>A journal entry with its body as JSON.</summary>
    public static object ToJson(JournalEntry e) => new
    {
        e.Position,
        e.MessageId,
        Stamp = e.Stamp.ToString(),
        e.Actor.Shard,
        e.Actor.ActorId,
        e.Kind,
        e.Version,
        Body = JsonNode.Parse(e.Body),
        e.Sender,
        CausedBy = e.CausedBy?.ToString(),
        e.OriginReplica,
        e.OriginPosition,
        e.RecordedAt,
    };

    /// <summary>A JSON text (a body or a record state) indented for reading.</summary>
    public static string Pretty(string? json) =>
        json is null ? "(none)" : JsonNode.Parse(json)!.ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    public static string Stamp(LamportStamp? stamp) => stamp?.ToString() ?? "-";

    public static string Kind(MessageKind kind) => kind.ToString().ToLowerInvariant();

    public static string Status(RecordStatus status) => status.ToString().ToLowerInvariant();

    public static string Shorten(string text, int max) => text.Length <= max ? text : text[..(max - 3)] + "...";
}
