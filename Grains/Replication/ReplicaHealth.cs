using Npgsql;

namespace PR2.Grains.Replication;

/// <summary>
/// The state of each replica of a shard as the directory records it: <c>down</c> when it does not answer
/// within <see cref="ProbeTimeout"/>, <c>catching-up</c> when it lacks more than <see cref="CatchingUpAbove"/>
/// entries that the reachable replicas hold, <c>up</c> otherwise. The threshold keeps a replica that trails
/// by a batch or two under steady load (the normal case with the Primary ack policy) from flapping.
/// </summary>
public sealed record ReplicaHealth(IReadOnlyList<VersionVector?> Vectors, IReadOnlyList<string> States)
{
    public const string Up = "up";
    public const string Down = "down";
    public const string CatchingUp = "catching-up";
    public const string Removed = "removed";

    public static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(1);
    public const long CatchingUpAbove = 1000;

    public bool IsDown(int replica) => Vectors[replica] is null;

    /// <summary>Probes every replica but the <paramref name="removed"/> ones (not probed: down to anti-entropy, <c>removed</c> as a state).</summary>
    public static async Task<ReplicaHealth> ProbeAsync(IReadOnlyList<NpgsqlDataSource> replicas, IReadOnlySet<int>? removed = null)
    {
        var vectors = await Task.WhenAll(replicas.Select((replica, i) => removed?.Contains(i) == true ? Task.FromResult<VersionVector?>(null) : ReadOrNullAsync(replica)));
        var union = vectors.OfType<VersionVector>().SelectMany(v => v.Positions)
            .GroupBy(p => p.Key).ToDictionary(g => g.Key, g => g.Max(p => p.Value));
        var states = vectors.Select((v, i) => removed?.Contains(i) == true ? Removed : v is null ? Down
            : union.Sum(p => Math.Max(0, p.Value - v[p.Key])) > CatchingUpAbove ? CatchingUp
            : Up).ToList();
        return new ReplicaHealth(vectors, states);
    }

    // WaitAsync: a paused server never answers Npgsql's own cancellation.
    private static async Task<VersionVector?> ReadOrNullAsync(NpgsqlDataSource replica)
    {
        try
        {
            using var timeout = new CancellationTokenSource(ProbeTimeout);
            return await VersionVector.ReadAsync(replica, timeout.Token).WaitAsync(timeout.Token);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
        {
            return null;
        }
    }
}
