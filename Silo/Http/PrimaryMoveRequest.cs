namespace PR2.Silo.Http;

/// <summary>The body of <c>POST /v1/shards/{shard}/primary</c>: the replica to move the shard's primary to.</summary>
public sealed class PrimaryMoveRequest
{
    /// <summary>Index of the replica (as <c>GET /v1/shards/{shard}</c> lists them).</summary>
    public int? Replica { get; init; }
}
