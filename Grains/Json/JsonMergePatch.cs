using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace PR2.Grains.Json;

/// <summary>
/// JSON merge patch (RFC 7386): members of the patch replace members of the target, <c>null</c> removes a member,
/// nested objects merge recursively, anything else replaces. Members keep the target's order; new ones follow in
/// the patch's order.
/// </summary>
public static class JsonMergePatch
{
    /// <summary>
    /// <paramref name="target"/> with <paramref name="patch"/> applied, both JSON object texts, in canonical form
    /// (<see cref="CanonicalJson"/>). Streams both documents into the result without building a node tree: it runs
    /// for every modify an actor or the records agent folds.
    /// </summary>
    public static string Apply(string target, string patch)
    {
        // Both are texts PR2 checked on the way in (bodies refuse repeated members) or wrote itself.
        using var targetDocument = new PooledJsonDocument(target);
        using var patchDocument = new PooledJsonDocument(patch);
        return CanonicalJson.Write((Target: targetDocument.Root, Patch: patchDocument.Root),
            static (documents, writer) => Merge(documents.Target, documents.Patch, writer));
    }

    /// <summary>The merge patch that turns <paramref name="from"/> into <paramref name="to"/> (members only in <paramref name="from"/> become null).</summary>
    public static JsonObject Diff(JsonObject from, JsonObject to)
    {
        var patch = new JsonObject();
        foreach (var (name, _) in from.Where(member => !to.ContainsKey(member.Key)))
        {
            patch[name] = null;
        }

        foreach (var (name, value) in to)
        {
            if (value is JsonObject toObject && from[name] is JsonObject fromObject)
            {
                var inner = Diff(fromObject, toObject);
                if (inner.Count > 0)
                {
                    patch[name] = inner;
                }
            }
            else if (!JsonNode.DeepEquals(from[name], value) || !from.ContainsKey(name))
            {
                // A null inside the new value cannot be expressed by a merge patch; it is dropped (absent = null).
                patch[name] = value?.DeepClone();
            }
        }

        return patch;
    }

    // Writes target (an object, or anything else, which counts as an empty object) merged with the patch object.
    private static void Merge(JsonElement target, JsonElement patch, Utf8JsonWriter writer)
    {
        var targetIsObject = target.ValueKind == JsonValueKind.Object;
        writer.WriteStartObject();
        if (targetIsObject)
        {
            foreach (var member in target.EnumerateObject())
            {
                if (!TryFind(patch, member, out var replacement))
                {
                    member.WriteTo(writer);
                }
                else if (replacement.ValueKind != JsonValueKind.Null)
                {
                    WriteMember(member, member.Value, replacement, writer);
                }
            }
        }

        foreach (var member in patch.EnumerateObject())
        {
            if (member.Value.ValueKind != JsonValueKind.Null && !(targetIsObject && TryFind(target, member, out _)))
            {
                WriteMember(member, default, member.Value, writer);
            }
        }

        writer.WriteEndObject();
    }

    // A member the patch sets: an object merges into what was there (its nulls dropped), anything else replaces it.
    private static void WriteMember(JsonProperty name, JsonElement current, JsonElement replacement, Utf8JsonWriter writer)
    {
        if (Unescaped(name, out var utf8Name))
        {
            writer.WritePropertyName(utf8Name);
        }
        else
        {
            writer.WritePropertyName(name.Name);
        }

        if (replacement.ValueKind == JsonValueKind.Object)
        {
            Merge(current, replacement, writer);
        }
        else
        {
            replacement.WriteTo(writer);
        }
    }

    // The member of an object with the same name as another document's member, compared without making strings.
    private static bool TryFind(JsonElement obj, JsonProperty name, out JsonElement value) =>
        Unescaped(name, out var utf8Name) ? obj.TryGetProperty(utf8Name, out value) : obj.TryGetProperty(name.Name, out value);

    // The member's name as UTF-8, straight from the document, when it has no escapes (a name with one goes through a string).
    private static bool Unescaped(JsonProperty member, out ReadOnlySpan<byte> utf8Name)
    {
        utf8Name = JsonMarshal.GetRawUtf8PropertyName(member);
        return !utf8Name.Contains((byte)'\\');
    }
}
