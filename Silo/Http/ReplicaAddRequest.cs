namespace PR2.Silo.Http;

/// <summary>The body of <c>POST /v1/shards/{shard}/replicas</c>: the replica to add to the shard.</summary>
public sealed class ReplicaAddRequest
{
    /// <summary>The configuration key of its connection string (under <c>Pr2:Connections:</c>, set on every silo), never the string.</summary>
    public string? Connection { get; init; }
}
