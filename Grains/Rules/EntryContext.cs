using System.Globalization;
using System.Text.Json.Nodes;

namespace PR2.Grains.Rules;

/// <summary>
/// What a rule's condition and templates can refer to for one journal entry: <c>entry.*</c> (kind, actor,
/// type, key, shard, position, version, sender, messageId, counter, day, hops), <c>body.*</c> (the message body) and
/// <c>record.*</c> (the actor's record state right after this entry). A path that leads nowhere is null.
/// </summary>
public sealed class EntryContext(JournalEntry entry, JsonObject body, JsonObject? record)
{
    public JournalEntry Entry => entry;

    /// <summary>The value at a dotted path, as JSON (null when absent).</summary>
    public JsonNode? Resolve(string path)
    {
        var dot = path.IndexOf('.', StringComparison.Ordinal);
        var (root, rest) = dot < 0 ? (path, "") : (path[..dot], path[(dot + 1)..]);
        return root switch
        {
            "entry" => EntryField(rest),
            "body" => Walk(body, rest),
            "record" => record is null ? null : Walk(record, rest),
            _ => null,
        };
    }

    /// <summary>Whether a path starts with a root this context knows (entry, body, record).</summary>
    public static bool IsKnownRoot(string path) =>
        path.StartsWith("entry.", StringComparison.Ordinal) || path == "body" || path.StartsWith("body.", StringComparison.Ordinal)
        || path == "record" || path.StartsWith("record.", StringComparison.Ordinal);

    /// <summary>The fields of <c>entry.*</c>.</summary>
    public static readonly IReadOnlyList<string> EntryFields =
        ["kind", "actor", "type", "key", "shard", "position", "version", "sender", "messageId", "counter", "day", "hops"];

    private JsonNode? EntryField(string name) => name switch
    {
        "kind" => entry.Kind.ToString().ToLowerInvariant(),
        "actor" => entry.Actor.ActorId,
        "type" => entry.Actor.Type,
        "key" => entry.Actor.Key,
        "shard" => entry.Actor.Shard,
        "position" => entry.Position,
        "version" => entry.Version,
        "sender" => entry.Sender,
        "messageId" => entry.MessageId.ToString(),
        "counter" => entry.Stamp.Counter,
        "day" => entry.RecordedAt.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
        "hops" => entry.Hops,
        _ => null,
    };

    private static JsonNode? Walk(JsonNode node, string path)
    {
        if (path.Length == 0)
        {
            return node;
        }

        JsonNode? current = node;
        foreach (var part in path.Split('.'))
        {
            current = current switch
            {
                JsonObject obj => obj[part],
                JsonArray array when int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var i) && i < array.Count => array[i],
                _ => null,
            };
            if (current is null)
            {
                return null;
            }
        }

        return current;
    }
}
