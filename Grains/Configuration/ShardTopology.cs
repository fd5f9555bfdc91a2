namespace PR2.Grains.Configuration;

/// <summary>The replicas of one shard: one PostgreSQL connection string per replica database.</summary>
public sealed class ShardTopology
{
    public List<string> Replicas { get; set; } = [];
}
