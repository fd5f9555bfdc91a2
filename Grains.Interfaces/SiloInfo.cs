namespace PR2;

/// <summary>One silo as the cluster's membership records it.</summary>
/// <param name="Name">The silo's name (its pod name on Kubernetes).</param>
/// <param name="Address">Its silo endpoint.</param>
/// <param name="Status">Joining, Active, ShuttingDown, Stopping or Dead; an active silo is one that serves (its <c>/ready</c> then also needs shard 0 to answer).</param>
/// <param name="StartedAt">When it started.</param>
[GenerateSerializer, Immutable, Alias("pr2.silo-info.v1")]
public sealed record SiloInfo(
    [property: Id(0)] string Name,
    [property: Id(1)] string Address,
    [property: Id(2)] string Status,
    [property: Id(3)] DateTimeOffset StartedAt);
