using Npgsql;

namespace PR2.Grains.Storage;

/// <summary>
/// The replica databases of one shard and which of them is the primary (where new entries land first).
/// The shard's journal writer decides the primary (see ShardWriterGrain); other grains in this silo learn
/// it through <see cref="Promote"/>.
/// </summary>
public sealed class ShardReplicaSet(int shard, IReadOnlyList<NpgsqlDataSource> replicas, int requiredCopies = 1, IReadOnlyList<NpgsqlDataSource>? readers = null,
    IReadOnlyList<string>? connectionStrings = null)
{
    private int _primary;

    /// <summary>How many replicas (the primary included) must hold an entry before it is acknowledged.</summary>
    public int RequiredCopies { get; } = requiredCopies;

    public int Shard { get; } = shard;

    public IReadOnlyList<NpgsqlDataSource> Replicas { get; } = replicas;

    /// <summary>
    /// The same databases through pools of their own, for reads that callers drive (record reads, queries, change feeds,
    /// journal pages, views): however many of those wait for a connection, the writer and the agents never do.
    /// </summary>
    public IReadOnlyList<NpgsqlDataSource> Readers { get; } = readers ?? replicas;

    /// <summary>
    /// The replicas' connection strings as configured, secrets included (a data source's own string leaves the password
    /// out once opened): for what needs a connection of its own, such as creating or restoring a replica's database.
    /// </summary>
    public IReadOnlyList<string> ConnectionStrings { get; } = connectionStrings ?? [.. replicas.Select(r => r.ConnectionString)];

    public int PrimaryIndex => Volatile.Read(ref _primary);

    public NpgsqlDataSource Primary => Replicas[PrimaryIndex];

    /// <summary>The primary through the readers' pool.</summary>
    public NpgsqlDataSource PrimaryReader => Readers[PrimaryIndex];

    /// <summary>The index of the replica <paramref name="source"/> opens (-1 for none of this shard's).</summary>
    public int IndexOf(NpgsqlDataSource source)
    {
        for (var i = 0; i < Replicas.Count; i++)
        {
            if (ReferenceEquals(Replicas[i], source))
            {
                return i;
            }
        }

        return -1;
    }

    public void Promote(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Replicas.Count);
        Volatile.Write(ref _primary, index);
    }
}
