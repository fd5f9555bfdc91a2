using System.Text.Json.Nodes;

namespace PR2.Grains.Json;

/// <summary>
/// JSON merge patch (RFC 7386) on System.Text.Json nodes: members of the patch replace members of the
/// target, <c>null</c> removes a member, nested objects merge recursively, anything else replaces.
/// </summary>
public static class JsonMergePatch
{
    /// <summary>Returns a new object: <paramref name="target"/> with <paramref name="patch"/> applied. Neither input changes.</summary>
    public static JsonObject Apply(JsonObject target, JsonObject patch)
    {
        var result = (JsonObject)target.DeepClone();
        MergeInto(result, patch);
        return result;
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

    private static void MergeInto(JsonObject target, JsonObject patch)
    {
        foreach (var (name, value) in patch)
        {
            if (value is null)
            {
                target.Remove(name);
            }
            else if (value is JsonObject patchObject)
            {
                // A non-object member is replaced by an object built from the patch (its nulls dropped).
                if (target[name] is not JsonObject existing)
                {
                    existing = [];
                    target[name] = existing;
                }

                MergeInto(existing, patchObject);
            }
            else
            {
                target[name] = value.DeepClone();
            }
        }
    }
}
