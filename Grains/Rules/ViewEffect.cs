using System.Text.Json.Nodes;

namespace PR2.Grains.Rules;

/// <summary>Change one document of a view in the source shard (<paramref name="Value"/> is null for delete).</summary>
public sealed record ViewEffect(string View, string Key, ViewMode Mode, JsonObject? Value) : RuleEffect;
