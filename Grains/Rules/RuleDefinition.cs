using System.Text.Json.Nodes;

namespace PR2.Grains.Rules;

/// <summary>A validated rule: which entries it reacts to, its condition, and its actions. Built by <see cref="RuleParser"/>.</summary>
public sealed record RuleDefinition(
    string Name,
    IReadOnlySet<MessageKind> Kinds,
    string TypePattern,
    IReadOnlyList<int>? Shards,
    RuleCondition? Condition,
    IReadOnlyList<RuleAction> Actions,
    bool StartFromBeginning,
    bool HaltOnError,
    bool UsesRecord,
    JsonObject Source)
{
    /// <summary>Rules follow these shards: the listed ones, or every shard but the control shard.</summary>
    public bool Follows(int shard) => Shards?.Contains(shard) ?? shard != 0;

    /// <summary>Whether an entry is one this rule reacts to (before its condition).</summary>
    public bool Matches(JournalEntry entry) =>
        Kinds.Contains(entry.Kind) && ActorTypePattern.Matches(TypePattern, entry.Actor.Type);
}
