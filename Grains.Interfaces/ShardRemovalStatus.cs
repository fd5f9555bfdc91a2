namespace PR2;

/// <summary>Where a shard's removal stands, and what it waits for before its next state.</summary>
/// <param name="Shard">The shard being removed.</param>
/// <param name="Removal">Its state as the directory records it.</param>
/// <param name="WaitingFor">What keeps it in that state, one line each (a replica not answering, an agent behind the sealed head, rule messages not delivered); empty when nothing does.</param>
[GenerateSerializer, Immutable, Alias("pr2.shard-removal-status.v1")]
public sealed record ShardRemovalStatus(
    [property: Id(0)] int Shard,
    [property: Id(1)] ShardRemoval Removal,
    [property: Id(2)] IReadOnlyList<string> WaitingFor);
