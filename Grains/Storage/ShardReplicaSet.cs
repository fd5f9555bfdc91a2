using Npgsql;

namespace PR2.Grains.Storage;

/// <summary>The replica databases of one shard. The first is the primary: new entries land there first.</summary>
public sealed class ShardReplicaSet(int shard, IReadOnlyList<NpgsqlDataSource> replicas)
{
    public int Shard { get; } = shard;

    public IReadOnlyList<NpgsqlDataSource> Replicas { get; } = replicas;

    public NpgsqlDataSource Primary => Replicas[0];
}
