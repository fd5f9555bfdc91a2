namespace PR2.Silo.Http;

/// <summary>The answer to <c>POST /v1/shards/{shard}/primary</c>: where the shard's primary is now.</summary>
/// <param name="Shard">The shard code.</param>
/// <param name="Primary">Index of its primary replica.</param>
public sealed record PrimaryMoveResponse(int Shard, int Primary);
