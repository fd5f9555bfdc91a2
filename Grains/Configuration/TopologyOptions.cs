namespace PR2.Grains.Configuration;

/// <summary>
/// Which shards exist and where their replicas live. Bound from the <c>Pr2:Topology</c> section, e.g.
/// <c>Pr2:Topology:Shards:1:Replicas:0 = "Host=db1;Database=pr2_s1;..."</c>, or from environment
/// variables such as <c>Pr2__Topology__Shards__1__Replicas__0</c>. The first replica is the primary.
/// </summary>
public sealed class TopologyOptions
{
    public const string SectionName = "Pr2:Topology";

    /// <summary>Shard code (as text, so that a bad key can be named) to that shard's replicas.</summary>
    public Dictionary<string, ShardTopology> Shards { get; set; } = [];
}
