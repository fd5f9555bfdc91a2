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
        using var targetDocument = JsonDocument.Parse(target, CanonicalJson.ParseOptions);
        using var patchDocument = JsonDocument.Parse(patch, CanonicalJson.ParseOptions);
        return CanonicalJson.Write((Target: targetDocument.RootElement, Patch: patchDocument.RootElement),
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
                var name = member.Name;
                if (!patch.TryGetProperty(name, out var replacement))
                {
                    member.WriteTo(writer);
                }
                else if (replacement.ValueKind != JsonValueKind.Null)
                {
                    WriteMember(name, member.Value, replacement, writer);
                }
            }
        }

        foreach (var member in patch.EnumerateObject())
        {
            if (member.Value.ValueKind != JsonValueKind.Null && !(targetIsObject && target.TryGetProperty(member.Name, out _)))
            {
                WriteMember(member.Name, default, member.Value, writer);
            }
        }

        writer.WriteEndObject();
    }

    // A member the patch sets: an object merges into what was there (its nulls dropped), anything else replaces it.
    private static void WriteMember(string name, JsonElement current, JsonElement replacement, Utf8JsonWriter writer)
    {
        writer.WritePropertyName(name);
        if (replacement.ValueKind == JsonValueKind.Object)
        {
            Merge(current, replacement, writer);
        }
        else
        {
            replacement.WriteTo(writer);
        }
    }
}
