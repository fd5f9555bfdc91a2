namespace PR2;

/// <summary>One component of a <see cref="ReadToken"/>: in <paramref name="Shard"/>, everything up to <paramref name="Position"/> of <paramref name="Origin"/>.</summary>
/// <param name="Shard">The shard.</param>
/// <param name="Origin">The replica that first wrote those entries (its origin id).</param>
/// <param name="Position">The origin position: that replica's own sequence of entries it wrote.</param>
[GenerateSerializer, Immutable, Alias("pr2.read-token-part.v1")]
public readonly record struct ReadTokenPart(
    [property: Id(0)] int Shard,
    [property: Id(1)] Guid Origin,
    [property: Id(2)] long Position);
