using System.Text.Json.Nodes;

namespace PR2.Grains.Rules;

/// <summary>Changes one document of a named view in the source shard, in the rule's own transaction.</summary>
/// <param name="Index">Its place in the rule's <c>do</c> list.</param>
/// <param name="View">The view's name.</param>
/// <param name="Key">Template of the document's key.</param>
/// <param name="Mode">Set, merge, add or delete.</param>
/// <param name="Value">Template of the document, patch or increments (null for delete).</param>
public sealed record ViewAction(int Index, string View, string Key, ViewMode Mode, JsonObject? Value) : RuleAction(Index);
