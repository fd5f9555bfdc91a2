namespace PR2;

/// <summary>One shard: its journal head on the primary, its replicas and its agents' marks.</summary>
/// <param name="Shard">The shard code.</param>
/// <param name="Head">Last committed journal position on the primary (-1 when the primary cannot be read).</param>
/// <param name="Clock">The shard's Lamport clock.</param>
/// <param name="Replicas">Each replica's reachability and head.</param>
/// <param name="Agents">Each agent following this shard: its mark and how many entries it is behind.</param>
[GenerateSerializer, Immutable, Alias("pr2.shard-status.v1")]
public sealed record ShardStatus(
    [property: Id(0)] int Shard,
    [property: Id(1)] long Head,
    [property: Id(2)] long Clock,
    [property: Id(3)] IReadOnlyList<ReplicaStatus> Replicas,
    [property: Id(4)] IReadOnlyList<AgentProgress> Agents);
