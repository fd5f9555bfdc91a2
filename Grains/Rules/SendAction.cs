using System.Text.Json.Nodes;

namespace PR2.Grains.Rules;

/// <summary>Sends a message to an actor in any shard, through the source shard's outbox.</summary>
/// <param name="Index">Its place in the rule's <c>do</c> list.</param>
/// <param name="Shard">Template of the target shard (a number or a placeholder).</param>
/// <param name="Actor">Template of the target actor id (<c>type/key</c>).</param>
/// <param name="Kind">The message kind.</param>
/// <param name="Body">Template of the body (a JSON object).</param>
public sealed record SendAction(int Index, JsonNode Shard, string Actor, MessageKind Kind, JsonObject Body) : RuleAction(Index);
