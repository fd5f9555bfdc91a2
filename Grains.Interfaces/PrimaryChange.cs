namespace PR2;

/// <summary>A shard's writer moved to another replica (a fail-over), as the directory in shard 0 journaled it.</summary>
/// <param name="Shard">The shard whose primary changed.</param>
/// <param name="Primary">The replica index that became its primary.</param>
/// <param name="At">When the directory recorded it (shard 0's clock).</param>
[GenerateSerializer, Immutable, Alias("pr2.primary-change.v1")]
public sealed record PrimaryChange(
    [property: Id(0)] int Shard,
    [property: Id(1)] int Primary,
    [property: Id(2)] DateTimeOffset At);
