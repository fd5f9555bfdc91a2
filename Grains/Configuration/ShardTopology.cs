namespace PR2.Grains.Configuration;

/// <summary>The replicas of one shard: one PostgreSQL connection string per replica database, and its ack policy.</summary>
public sealed class ShardTopology
{
    public List<string> Replicas { get; set; } = [];

    /// <summary>What the shard is (e.g. the company it holds): seeds its directory record; <c>pr2 shards set</c> changes it there.</summary>
    public string? Name { get; set; }

    /// <summary>Who answers for the shard (a team, a person): seeds its directory record like <see cref="Name"/>.</summary>
    public string? Owner { get; set; }

    /// <summary>Labels (key to value) that seed the shard's directory record like <see cref="Name"/>.</summary>
    public Dictionary<string, string> Labels { get; set; } = [];

    /// <summary><c>Primary</c> (default), <c>Quorum</c> or <c>All</c>: see <see cref="Configuration.AckPolicy"/>.</summary>
    public AckPolicy AckPolicy { get; set; } = AckPolicy.Primary;

    /// <summary>Replicas (by index) added at runtime and still catching up, as the directory records them; none in configuration.</summary>
    public IReadOnlySet<int>? Joining { get; set; }

    /// <summary>Replicas (by index) removed at runtime, as the directory records them; none in configuration.</summary>
    public IReadOnlySet<int>? Removed { get; set; }
}
