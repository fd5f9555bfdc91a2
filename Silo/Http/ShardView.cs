namespace PR2.Silo.Http;

/// <summary>A shard in <c>GET /v1/shards/{shard}</c>: its directory record and, when the status could be read, its replicas and agents now.</summary>
public sealed record ShardView(ShardEntry Shard, ShardStatus? Status);
