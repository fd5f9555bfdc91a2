using System.Text.Json;
using System.Text.Json.Serialization;

namespace PR2.Client;

/// <summary>How typed bodies, patches and states are written and read unless a client is given its own options.</summary>
public static class Pr2Json
{
    /// <summary>
    /// Web defaults (camelCase, case-insensitive reads), and null properties left out: in a modify (a JSON merge patch)
    /// a null would remove the member, so a C# patch object changes only what it sets. To remove a member, send a
    /// <see cref="System.Text.Json.Nodes.JsonObject"/> with an explicit null.
    /// </summary>
    public static JsonSerializerOptions Default { get; } = CreateDefault();

    private static JsonSerializerOptions CreateDefault()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web) { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}
