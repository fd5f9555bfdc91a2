namespace PR2.Grains.Rules;

/// <summary>
/// A rule written in C#, for what the expression language cannot say (a query, a computation). Register it
/// in the silo with <c>services.AddPr2Rule&lt;T&gt;()</c>. It runs like a data rule: an agent named
/// <c>rule-{Name}</c> per followed shard, from the beginning of the journal, its effects and mark in one
/// transaction, messages through the outbox. It sees the source shard's records at least as new as the
/// entry it handles. Its effects must depend only on the entry and what it reads, so that a replay makes
/// the same ones; a <see cref="RuleFailure"/> parks the entry, any other exception stops the rule at it.
/// </summary>
public interface IRule
{
    /// <summary>1-60 characters: lowercase letters, digits and '-', starting with a letter; unique among all rules.</summary>
    string Name { get; }

    /// <summary>The kinds of entries it reacts to.</summary>
    IReadOnlySet<MessageKind> Kinds { get; }

    /// <summary>The actor type it reacts to: a type, a prefix ending in '*', or '*'.</summary>
    string TypePattern { get; }

    /// <summary>The shards it follows (default: every shard but the control shard).</summary>
    bool Follows(int shard) => shard != 0;

    /// <summary>What to do about one entry: messages to send and view changes, applied in order.</summary>
    Task<IReadOnlyList<RuleEffect>> HandleAsync(RuleInput input, CancellationToken cancellationToken);
}
