using Npgsql;
using PR2.Grains.Configuration;

namespace PR2.Grains.Storage;

/// <summary>
/// The replica databases of one shard and which of them is the primary (where new entries land first).
/// The shard's journal writer decides the primary (see ShardWriterGrain); other grains in this silo learn
/// it through <see cref="Promote"/>. A replica added at runtime is <see cref="Joining"/> until it has caught up: anti-entropy
/// fills it and its agents follow it, but reads do not use it, no writer opens on it and acknowledgements do not count it.
/// A replica removed at runtime keeps its index (indexes never move) but is <see cref="Removed"/>: nothing uses it again.
/// Immutable but for the primary: a change of membership is a new set (<see cref="ShardRegistry"/> swaps it in).
/// </summary>
public sealed class ShardReplicaSet(int shard, IReadOnlyList<NpgsqlDataSource> replicas, AckPolicy ackPolicy = AckPolicy.Primary,
    IReadOnlyList<NpgsqlDataSource>? readers = null, IReadOnlyList<string>? connectionStrings = null, IReadOnlySet<int>? joining = null,
    IReadOnlySet<int>? removed = null)
{
    // The first member until the writer says (replica 0 unless it was removed).
    private int _primary = Enumerable.Range(0, replicas.Count).FirstOrDefault(i => removed?.Contains(i) != true && joining?.Contains(i) != true);

    public AckPolicy AckPolicy { get; } = ackPolicy;

    /// <summary>Replicas added at runtime that are still catching up (by index): not members yet.</summary>
    public IReadOnlySet<int> Joining { get; } = joining ?? new HashSet<int>();

    /// <summary>Replicas removed at runtime (by index): no longer members, filled, followed or read.</summary>
    public IReadOnlySet<int> Removed { get; } = removed ?? new HashSet<int>();

    /// <summary>The replicas that serve reads, can become the primary and count toward acknowledgements, by index.</summary>
    public IReadOnlyList<int> Members { get; } = [.. Enumerable.Range(0, replicas.Count).Where(i => joining?.Contains(i) != true && removed?.Contains(i) != true)];

    /// <summary>The replicas anti-entropy fills and agents follow: the members and the joining ones, by index.</summary>
    public IReadOnlyList<int> Live { get; } = [.. Enumerable.Range(0, replicas.Count).Where(i => removed?.Contains(i) != true)];

    /// <summary>How many members (the primary included) must hold an entry before it is acknowledged.</summary>
    public int RequiredCopies => AckPolicy switch
    {
        AckPolicy.Quorum => (Members.Count / 2) + 1,
        AckPolicy.All => Members.Count,
        _ => 1,
    };

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

    public bool IsMember(int replica) => replica >= 0 && replica < Replicas.Count && !Joining.Contains(replica) && !Removed.Contains(replica);

    public bool IsRemoved(int replica) => Removed.Contains(replica);

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
        if (index >= Replicas.Count)
        {
            // The writer (on another silo) opened on a replica added since this silo last followed the directory (at
            // most one directory round ago): retriable, this silo follows it within seconds.
            throw new Pr2Exception(ErrorCode.ShardUnavailable,
                $"shard {Shard}: the primary is replica {index}, which this silo has not followed yet (added a moment ago); retry");
        }

        Volatile.Write(ref _primary, index);
    }

    /// <summary>
    /// This set with replicas appended (their pools given), <paramref name="joiningNow"/> as the replicas still joining and
    /// <paramref name="removedNow"/> as the ones removed; the existing pools are shared, so connections in use stay valid,
    /// and the primary is carried over.
    /// </summary>
    public ShardReplicaSet With(IReadOnlyList<(NpgsqlDataSource Writer, NpgsqlDataSource Reader, string ConnectionString)> added, IReadOnlySet<int> joiningNow,
        IReadOnlySet<int> removedNow)
    {
        var next = new ShardReplicaSet(Shard, [.. Replicas, .. added.Select(a => a.Writer)], AckPolicy, [.. Readers, .. added.Select(a => a.Reader)],
            [.. ConnectionStrings, .. added.Select(a => a.ConnectionString)], joiningNow, removedNow);
        // A removed replica is never the primary: until this silo asks the writer, the first member stands in.
        next.Promote(next.IsRemoved(PrimaryIndex) && next.Members.Count > 0 ? next.Members[0] : PrimaryIndex);
        return next;
    }
}
