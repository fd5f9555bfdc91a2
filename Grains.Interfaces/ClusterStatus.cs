namespace PR2;

/// <summary>What the cluster holds and how far its agents are, shard by shard.</summary>
[GenerateSerializer, Immutable, Alias("pr2.cluster-status.v1")]
public sealed record ClusterStatus(
    [property: Id(0)] IReadOnlyList<ShardStatus> Shards,
    [property: Id(1)] DateTimeOffset ReadAt,
    [property: Id(2)] IReadOnlyList<SiloInfo>? Silos = null);
