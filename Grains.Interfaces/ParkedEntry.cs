namespace PR2;

/// <summary>A journal entry on which a rule's condition or action failed, parked with the reason.</summary>
/// <param name="Rule">The rule.</param>
/// <param name="Shard">The shard whose journal holds the entry.</param>
/// <param name="Position">The entry's position in that journal.</param>
/// <param name="Reason">What failed, and where.</param>
/// <param name="ParkedAt">When it was parked.</param>
[GenerateSerializer, Immutable, Alias("pr2.parked-entry.v1")]
public sealed record ParkedEntry(
    [property: Id(0)] string Rule,
    [property: Id(1)] int Shard,
    [property: Id(2)] long Position,
    [property: Id(3)] string Reason,
    [property: Id(4)] DateTimeOffset ParkedAt);
