namespace PR2;

/// <summary>What the cluster holds and how far its agents are, shard by shard.</summary>
/// <param name="Shards">Each shard: heads, replicas, agents.</param>
/// <param name="ReadAt">When this status was read.</param>
/// <param name="Silos">The silos as membership records them (null when membership did not answer).</param>
/// <param name="PrimaryChanges">The latest fail-overs, newest first (null when shard 0 did not answer).</param>
[GenerateSerializer, Immutable, Alias("pr2.cluster-status.v1")]
public sealed record ClusterStatus(
    [property: Id(0)] IReadOnlyList<ShardStatus> Shards,
    [property: Id(1)] DateTimeOffset ReadAt,
    [property: Id(2)] IReadOnlyList<SiloInfo>? Silos = null,
    [property: Id(3)] IReadOnlyList<PrimaryChange>? PrimaryChanges = null);
