namespace PR2.Grains.Streaming;

/// <summary>
/// The shards each silo says it has joined (<see cref="IStreamReadersGrain"/>), as last heard on this silo: which silos
/// may be handed a shard's journal queue (<see cref="ShardQueueBalancer"/>). A silo that lacks a shard's configuration
/// key, or whose secret names another shard's database, never joins it, and must not be the one that reads its stream.
/// </summary>
public sealed class StreamReaders
{
    private volatile Dictionary<string, HashSet<int>> _joined = new(StringComparer.Ordinal);

    /// <summary>Raised when what some silo reports changed.</summary>
    public event Action? Changed;

    /// <summary>
    /// Whether <paramref name="silo"/> may read <paramref name="shard"/>'s queue: it reported that shard, or it has not
    /// reported at all (not heard from yet: every silo is presumed to join every shard, as configured).
    /// </summary>
    public bool MayRead(SiloAddress silo, int shard) => !_joined.TryGetValue(silo.ToString(), out var shards) || shards.Contains(shard);

    /// <summary>
    /// Takes the reports of every silo; raises <see cref="Changed"/> when they differ from the last ones. A silo heard from
    /// before and missing now (the reports' grain was activated again and has not heard from it yet) keeps its last report:
    /// a silo is only ever a candidate for the shards it said it joined. Silos no longer active are left out by the balancer.
    /// </summary>
    public void Update(IReadOnlyDictionary<string, int[]> reports)
    {
        var current = _joined;
        var next = new Dictionary<string, HashSet<int>>(current, StringComparer.Ordinal);
        foreach (var (silo, shards) in reports)
        {
            next[silo] = [.. shards];
        }

        if (next.Count == current.Count && next.All(r => current.TryGetValue(r.Key, out var shards) && shards.SetEquals(r.Value)))
        {
            return;
        }

        _joined = next;
        try
        {
            Changed?.Invoke();
        }
        catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException)
        {
            // A balancer shutting down: it no longer hands out queues.
        }
    }
}
