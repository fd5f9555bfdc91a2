namespace PR2;

/// <summary>A rule as the directory (shard 0) records it.</summary>
/// <param name="Name">The rule's name (its key: <c>rule/{name}</c> in shard 0).</param>
/// <param name="Version">Version of its directory record: every add, replace, pause or resume makes a new one.</param>
/// <param name="Paused">A paused rule does not move; it goes on from where it stopped when resumed.</param>
/// <param name="Definition">The definition as JSON (see docs/rules.md).</param>
/// <param name="StartAfter">
/// Per followed shard, the Lamport counter the rule starts after: it acts on the entries stamped above it (0 for a rule
/// that starts at the beginning). A stamp, not a position: positions differ from replica to replica.
/// </param>
/// <param name="Generation">
/// Chosen when the rule is added (not when it is replaced, paused or resumed): the ids of the messages it sends and
/// the keys of its marks carry it, so a rule removed and added again under the same name starts afresh everywhere.
/// </param>
[GenerateSerializer, Immutable, Alias("pr2.rule-info.v1")]
public sealed record RuleInfo(
    [property: Id(0)] string Name,
    [property: Id(1)] long Version,
    [property: Id(2)] bool Paused,
    [property: Id(3)] string Definition,
    [property: Id(4)] IReadOnlyDictionary<int, long> StartAfter,
    [property: Id(5)] string Generation = "");
