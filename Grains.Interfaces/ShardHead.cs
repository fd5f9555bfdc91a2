namespace PR2;

/// <summary>The committed head of a shard's journal on its primary replica.</summary>
/// <param name="Shard">The shard code.</param>
/// <param name="Position">Last committed position (0 = empty journal).</param>
/// <param name="Clock">The shard's Lamport clock: the counter of its newest stamp.</param>
[GenerateSerializer, Immutable, Alias("pr2.shard-head.v1")]
public sealed record ShardHead(
    [property: Id(0)] int Shard,
    [property: Id(1)] long Position,
    [property: Id(2)] long Clock);
