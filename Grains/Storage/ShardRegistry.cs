using System.Globalization;
using Microsoft.Extensions.Options;
using Npgsql;
using PR2.Grains.Configuration;

namespace PR2.Grains.Storage;

/// <summary>
/// The shards this silo knows and a pooled data source per replica database. One per silo. It starts with the
/// configured shards; shards added at runtime join it as the directory records them (<see cref="TopologyFollower"/>).
/// </summary>
public sealed class ShardRegistry : IAsyncDisposable
{
    // How long the pools of a removed shard stay open (twice the call bound): calls that got its set just before end first.
    private readonly TimeSpan _removedPoolGrace;

    // Replaced whole when a shard joins, so readers never lock and never see a half-made change.
    private volatile Dictionary<int, ShardReplicaSet> _shards = [];

    // Shards removed (their removal reached releasing): never joined again on this silo; asking for one says so.
    private volatile HashSet<int> _removed = [];

    // Removed shards' sets whose pools are not closed yet (closed after the grace, or at shutdown).
    private readonly List<ShardReplicaSet> _closing = [];
    private readonly Lock _joining = new();
    private readonly int _commandTimeoutSeconds;

    public ShardRegistry(IOptions<TopologyOptions> topology, IOptions<WriteOptions> write)
    {
        _commandTimeoutSeconds = write.Value.CommandTimeoutSeconds;
        _removedPoolGrace = 2 * write.Value.CallTimeout;
        foreach (var (key, shard) in topology.Value.Shards)
        {
            TryAdd(int.Parse(key, NumberStyles.None, CultureInfo.InvariantCulture), shard);
        }
    }

    /// <summary>The known shard codes, ascending.</summary>
    public IReadOnlyList<int> ShardCodes => [.. _shards.Keys.Order()];

    public bool Contains(int shard) => _shards.ContainsKey(shard);

    /// <summary>
    /// The known shards' replica sets, ascending, from one snapshot: a loop over them never meets a shard removed meanwhile
    /// (as looping over <see cref="ShardCodes"/> and asking <see cref="Get"/> for each can).
    /// </summary>
    public IReadOnlyList<ShardReplicaSet> Sets => [.. _shards.Values.OrderBy(s => s.Shard)];

    /// <summary>Whether <paramref name="shard"/> was removed (<see cref="TryRemove"/>).</summary>
    public bool IsRemoved(int shard) => _removed.Contains(shard);

    /// <summary>The removed shard codes, ascending.</summary>
    public IReadOnlyList<int> RemovedCodes => [.. _removed.Order()];

    /// <summary>
    /// The codes a stored definition (a rule) may name: the shards served and the removed ones. A rule written before a
    /// shard's removal keeps running for its other shards; what it sends to the removed one is refused and settled.
    /// </summary>
    public IReadOnlyList<int> NamedCodes => [.. _shards.Keys.Concat(_removed).Distinct().Order()];

    /// <summary>Raised after a shard was removed (<see cref="TryRemove"/>), outside any lock.</summary>
    public event Action<int>? ShardRemoved;

    /// <summary>
    /// Drops a shard whose removal reached <c>releasing</c>: from now on <see cref="Get"/> answers
    /// <see cref="ErrorCode.ShardRemoved"/> and it never joins again here; its pools are closed after a grace period, so that
    /// its databases can be dropped. False when it was removed already.
    /// </summary>
    public bool TryRemove(int code)
    {
        ShardReplicaSet? removed;
        lock (_joining)
        {
            if (_removed.Contains(code))
            {
                return false;
            }

            _removed = [.. _removed, code];
            if (_shards.TryGetValue(code, out removed))
            {
                // A copy without it, swapped whole: readers of the current dictionary never see it change.
                var remaining = new Dictionary<int, ShardReplicaSet>(_shards);
                remaining.Remove(code);
                _shards = remaining;
                _closing.Add(removed);
            }
        }

        if (removed is not null)
        {
            _ = CloseLaterAsync(removed);
        }

        foreach (var follower in ShardRemoved?.GetInvocationList().Cast<Action<int>>() ?? [])
        {
            try
            {
                follower(code);
            }
            catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException)
            {
                // A stream balancer shutting down: nothing to tell it.
            }
        }

        return true;
    }

    private async Task CloseLaterAsync(ShardReplicaSet set)
    {
        await Task.Delay(_removedPoolGrace);
        lock (_joining)
        {
            if (!_closing.Remove(set))
            {
                return; // closed at shutdown
            }
        }

        await CloseAsync(set);
    }

    private static async Task CloseAsync(ShardReplicaSet set)
    {
        foreach (var source in set.Replicas.Concat(set.Readers))
        {
            await source.DisposeAsync();
        }
    }

    /// <summary>Raised after a shard joined at runtime (<see cref="TryAdd"/>), outside any lock.</summary>
    public event Action<int>? ShardAdded;

    /// <summary>Adds a shard with its replicas' connection strings; false (nothing changed) when it is known already.</summary>
    public bool TryAdd(int code, ShardTopology shard)
    {
        lock (_joining)
        {
            if (_shards.ContainsKey(code) || _removed.Contains(code))
            {
                return false;
            }

            var sources = shard.Replicas.Select(connectionString => CreateDataSource(connectionString, _commandTimeoutSeconds, "pr2")).ToList();
            var readers = shard.Replicas.Select(connectionString => CreateDataSource(connectionString, _commandTimeoutSeconds, "pr2-read")).ToList();
            _shards = new Dictionary<int, ShardReplicaSet>(_shards)
            {
                [code] = new ShardReplicaSet(code, sources, shard.AckPolicy, readers, [.. shard.Replicas], shard.Joining, shard.Removed),
            };
        }

        // Each follower on its own: one that fails must not make a shard that joined look as if it had not.
        foreach (var follower in ShardAdded?.GetInvocationList().Cast<Action<int>>() ?? [])
        {
            try
            {
                follower(code);
            }
            catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException)
            {
                // A stream balancer shutting down: nothing to tell it.
            }
        }

        return true;
    }

    /// <summary>
    /// Follows a change of a known shard's replicas as the directory records it: the replicas of
    /// <paramref name="connectionStrings"/> beyond the ones it has are appended, <paramref name="joining"/> are the
    /// replicas still catching up and <paramref name="removed"/> the ones removed (they keep their index). The set is
    /// swapped whole (its pools kept); false when nothing changed, the shard is not known here, or this silo has more
    /// replicas than given (indexes never go away).
    /// </summary>
    public bool TryChange(int code, IReadOnlyList<string> connectionStrings, IReadOnlySet<int> joining, IReadOnlySet<int> removed)
    {
        lock (_joining)
        {
            if (!_shards.TryGetValue(code, out var current) || connectionStrings.Count < current.Replicas.Count)
            {
                return false;
            }

            // Membership only moves forward, whatever order records are read in: a replica this silo has as a member never
            // joins again (only a new one joins), and a removed one stays removed.
            joining = joining.Where(i => current.Joining.Contains(i) || i >= current.Replicas.Count).ToHashSet();
            removed = removed.Union(current.Removed).ToHashSet();
            if (connectionStrings.Count == current.Replicas.Count && current.Joining.SetEquals(joining) && current.Removed.SetEquals(removed))
            {
                return false;
            }

            var pools = connectionStrings.Skip(current.Replicas.Count).Select(connectionString => (CreateDataSource(connectionString, _commandTimeoutSeconds, "pr2"),
                CreateDataSource(connectionString, _commandTimeoutSeconds, "pr2-read"), connectionString)).ToList();
            _shards = new Dictionary<int, ShardReplicaSet>(_shards) { [code] = current.With(pools, joining, removed) };
            return true;
        }
    }

    /// <summary>The replicas of <paramref name="shard"/>; an unknown shard is a <see cref="ErrorCode.UnknownShard"/> error.</summary>
    public ShardReplicaSet Get(int shard) =>
        _shards.TryGetValue(shard, out var set) ? set
            : _removed.Contains(shard) ? throw new Pr2Exception(ErrorCode.ShardRemoved, $"shard {shard} was removed")
            : throw new Pr2Exception(ErrorCode.UnknownShard, $"shard {shard} is not configured; known shards: {string.Join(", ", ShardCodes)}");

    public async ValueTask DisposeAsync()
    {
        List<ShardReplicaSet> closing;
        lock (_joining)
        {
            closing = [.. _closing];
            _closing.Clear();
        }

        foreach (var set in _shards.Values.Concat(closing))
        {
            await CloseAsync(set);
        }
    }

    // applicationName tells the two pools of a database apart in pg_stat_activity (unless the operator named it).
    private static NpgsqlDataSource CreateDataSource(string connectionString, int commandTimeoutSeconds, string applicationName)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        // Fail fast: a replica that does not answer within seconds is treated as unavailable,
        // unless the operator set explicit timeouts in the connection string.
        if (!connectionString.Contains("Command Timeout", StringComparison.OrdinalIgnoreCase)
            && !connectionString.Contains("CommandTimeout", StringComparison.OrdinalIgnoreCase))
        {
            builder.CommandTimeout = commandTimeoutSeconds;
        }

        if (!connectionString.Contains("Timeout", StringComparison.OrdinalIgnoreCase))
        {
            builder.Timeout = commandTimeoutSeconds;
        }

        // A cancel request to a stalled server must not wait long either before the connection is dropped.
        if (!connectionString.Contains("Cancellation Timeout", StringComparison.OrdinalIgnoreCase))
        {
            builder.CancellationTimeout = 1000;
        }

        // The writer and the agents run the same few statements thousands of times a second: prepared once per
        // connection, PostgreSQL skips parsing and planning them each time.
        if (!connectionString.Contains("Auto Prepare", StringComparison.OrdinalIgnoreCase))
        {
            builder.MaxAutoPrepare = 64;
            builder.AutoPrepareMinUsages = 2;
        }

        // Nothing PR2 runs leaves session state behind (its one session setting is given at connect, below; the
        // migration's advisory lock is released in a finally), so a pooled connection needs no reset statements.
        if (!connectionString.Contains("Reset On Close", StringComparison.OrdinalIgnoreCase))
        {
            builder.NoResetOnClose = true;
        }

        // Acknowledged means durable: every PR2 session commits synchronously, whatever the server's default.
        // A session setting rather than SET LOCAL, so that a group commit sent as one implicit transaction has it too.
        // No JIT: PR2 runs short statements only, and a misestimated plan (a one-row table with many dead rows looks
        // large) can cross the JIT cost threshold and spend 100 ms compiling a statement that runs in one.
        builder.Options = $"{builder.Options} -c synchronous_commit=on -c jit=off".Trim();

        builder.ApplicationName ??= applicationName;
        return new NpgsqlDataSourceBuilder(builder.ConnectionString).Build();
    }
}
