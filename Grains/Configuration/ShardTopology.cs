namespace PR2.Grains.Configuration;

/// <summary>The replicas of one shard: one PostgreSQL connection string per replica database, and its ack policy.</summary>
public sealed class ShardTopology
{
    public List<string> Replicas { get; set; } = [];

    /// <summary><c>Primary</c> (default), <c>Quorum</c> or <c>All</c>: see <see cref="Configuration.AckPolicy"/>.</summary>
    public AckPolicy AckPolicy { get; set; } = AckPolicy.Primary;

    /// <summary>How many replicas must hold an entry before it is acknowledged.</summary>
    public int RequiredCopies => AckPolicy switch
    {
        AckPolicy.Quorum => (Replicas.Count / 2) + 1,
        AckPolicy.All => Replicas.Count,
        _ => 1,
    };
}
