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
