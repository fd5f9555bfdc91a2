using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Npgsql;
using PR2.Grains.Configuration;
using PR2.Grains.Streaming;

namespace PR2.Grains.Storage;

/// <summary>
/// Keeps this silo's <see cref="ShardRegistry"/> up with the directory: a shard recorded there (<c>shard/{code}</c> in
/// shard 0, with the configuration keys of its replicas' connection strings) that this silo does not know joins it,
/// its schema checked. The agent supervisor refreshes every few seconds; a grain of a shard this silo does not know
/// asks the directory first (<see cref="KnowsAsync"/>), so "unknown shard" is never said of one that was just added.
/// </summary>
public sealed class TopologyFollower(ShardRegistry shards, SchemaMigrator migrator, ConnectionKeys connections, IGrainFactory grains,
    ILocalSiloDetails silo, StreamReaders readers, ILogger<TopologyFollower> logger)
{
    private static readonly TimeSpan OwnerCheckTimeout = TimeSpan.FromSeconds(2);

    // The connection of a removed replica whose key this silo does not have: it keeps the index, and nothing opens it.
    private const string RemovedReplica = "Host=removed.invalid;Database=removed";

    private readonly ConcurrentDictionary<int, string> _notJoined = new();

    /// <summary>
    /// Joins every shard the directory lists that this silo does not know yet (one that cannot join is logged and
    /// skipped), then tells the others which shards this silo has joined and learns theirs (<see cref="StreamReaders"/>).
    /// </summary>
    public async Task RefreshAsync()
    {
        try
        {
            await JoinRecordedAsync();
        }
        finally
        {
            // Whatever the round met, the others hear which shards this silo reads.
            readers.Update(await grains.GetGrain<IStreamReadersGrain>(0).Report(silo.SiloAddress.ToString(), [.. shards.ShardCodes], [.. shards.RemovedCodes]));
        }
    }

    /// <summary>The shards whose removal the directory listed as begun and not over, in the last round.</summary>
    public IReadOnlyCollection<int> Removing { get; private set; } = [];

    private async Task JoinRecordedAsync()
    {
        var entries = await grains.GetGrain<IDirectoryGrain>(0).GetShards();
        Removing = [.. entries.Where(e => e.Removal is { State: not ShardRemoval.Removed }).Select(e => e.Shard)];
        foreach (var entry in entries)
        {
            if (Released(entry))
            {
                continue;
            }

            try
            {
                _ = shards.Contains(entry.Shard) ? await FollowAsync(entry) : await JoinAsync(entry);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException or IOException or ArgumentException)
            {
                NotJoined(entry.Shard, e.Message);
            }
        }
    }

    // A shard whose removal reached releasing is dropped here (never joined again); true when the record says so.
    private bool Released(ShardEntry entry)
    {
        if (entry.Removal is not { } removal || ShardRemoval.Order(removal.State) < ShardRemoval.Order(ShardRemoval.Releasing))
        {
            return false;
        }

        if (shards.TryRemove(entry.Shard))
        {
            Log.ShardReleased(logger, entry.Shard);
        }

        return true;
    }

    /// <summary>
    /// Whether <paramref name="shard"/> is a shard of the cluster: known here, or recorded in the directory (then it joins).
    /// A recorded shard this silo cannot use (a configuration key it lacks) is <see cref="ErrorCode.ShardUnavailable"/>,
    /// never "unknown". Not remembered as unknown: it may be added the next moment; the record's actor answers from one
    /// index probe, what any read costs.
    /// </summary>
    public async Task<bool> KnowsAsync(long shard)
    {
        if (shard is < 0 or > int.MaxValue)
        {
            return false;
        }

        var code = (int)shard;
        if (shards.Contains(code) || shards.IsRemoved(code))
        {
            return true; // a removed one is one of the cluster's: asking the registry for it says it was removed
        }

        var record = await grains.GetGrain<IActorGrain>(0, $"shard/{code}", null).GetRecord();
        if (record.Status != RecordStatus.Live || DirectoryGrain.TryToShardEntry(record) is not { } entry)
        {
            return false;
        }

        if (Released(entry))
        {
            return true;
        }

        return await JoinAsync(entry) is not { } problem
            ? true
            : throw new Pr2Exception(ErrorCode.ShardUnavailable, $"shard {code} is in the directory but this silo cannot use it: {problem}");
    }

    /// <summary>
    /// Reads <paramref name="shard"/>'s directory record now and follows it (a replica added or admitted on another silo):
    /// for the journal writer, which must count the replicas the directory records before it opens. Shard 0's replicas are
    /// configured: nothing to read. A record this silo cannot follow is <see cref="ErrorCode.ShardUnavailable"/>.
    /// </summary>
    public async Task RefreshShardAsync(int shard)
    {
        if (shard == 0)
        {
            return;
        }

        var record = await grains.GetGrain<IActorGrain>(0, $"shard/{shard}", null).GetRecord();
        if (record.Status != RecordStatus.Live || DirectoryGrain.TryToShardEntry(record) is not { } entry || Released(entry))
        {
            return;
        }

        if ((shards.Contains(shard) ? await FollowAsync(entry) : await JoinAsync(entry)) is { } problem)
        {
            throw new Pr2Exception(ErrorCode.ShardUnavailable, $"shard {shard}: this silo cannot follow the replicas the directory records: {problem}");
        }
    }

    /// <summary>Learns the shard of the stamp a message names as its cause: one of a shard added a moment ago is one of this cluster's.</summary>
    public Task<bool> KnowsCauseAsync(Message message) => message.CausedBy is { } cause ? KnowsAsync(cause.Shard) : Task.FromResult(true);

    /// <summary>Registers the recorded shard here; the reason when this silo cannot (null once it is registered).</summary>
    private async Task<string?> JoinAsync(ShardEntry entry)
    {
        if (entry.Connections is not { Count: > 0 } keys)
        {
            return "its record names no connections (a configured shard: it is in the configuration of the silos that serve it)";
        }

        // A removed replica's key and database may be gone: it keeps its index with a connection nothing opens.
        var removed = (entry.Removed ?? []).ToHashSet();
        var missing = keys.Where((key, i) => !removed.Contains(i) && connections.Resolve(key) is null).ToList();
        if (missing.Count > 0)
        {
            return NotJoined(entry.Shard, $"configuration key {string.Join(", ", missing)} is not set on this silo");
        }

        var resolved = keys.Select((key, i) => connections.Resolve(key) ?? RemovedReplica).ToList();
        for (var i = 0; i < resolved.Count; i++)
        {
            if (removed.Contains(i))
            {
                continue;
            }

            // This silo's secret may name another database than the one prepared: one that belongs to another shard is
            // never used for this one (one that does not answer now is checked when its schema is).
            if (await OwnerAsync(resolved[i]) is { } owner && owner != entry.Shard)
            {
                return NotJoined(entry.Shard, $"{keys[i]} names a replica of shard {owner} on this silo");
            }
        }

        var topology = new ShardTopology
        {
            Replicas = resolved,
            AckPolicy = Enum.TryParse<AckPolicy>(entry.AckPolicy, ignoreCase: true, out var policy) ? policy : AckPolicy.Primary,
            Joining = (entry.Joining ?? []).ToHashSet(),
            Removed = (entry.Removed ?? []).ToHashSet(),
        };
        if (shards.TryAdd(entry.Shard, topology))
        {
            _notJoined.TryRemove(entry.Shard, out _);
            Log.ShardJoined(logger, entry.Shard, keys.Count, topology.AckPolicy.ToString());
            await migrator.MigrateShardAsync(entry.Shard, deferIfDown: true, CancellationToken.None);
        }

        return null;
    }

    // Follows the recorded replicas of a shard this silo has: replicas appended to the ones it has join it (through the
    // configuration keys the record names), and which of them are still joining changes as recorded. The reason when it
    // cannot (null once it follows).
    private async Task<string?> FollowAsync(ShardEntry entry)
    {
        var set = shards.Get(entry.Shard);
        var joining = (entry.Joining ?? []).Where(i => i >= 0 && i < entry.Replicas.Count).ToHashSet();
        var removed = (entry.Removed ?? []).Where(i => i >= 0 && i < entry.Replicas.Count).ToHashSet();
        if (entry.Replicas.Count < set.Replicas.Count)
        {
            // Replicas are never removed: a record listing fewer (an older silo's sync, a configuration that shrank) is not
            // followed, and never makes a replica this silo has as joining a member.
            return NotJoined(entry.Shard, $"its record lists {entry.Replicas.Count} replicas, fewer than the {set.Replicas.Count} this silo has");
        }

        if (entry.Replicas.Count == set.Replicas.Count)
        {
            return shards.TryChange(entry.Shard, set.ConnectionStrings, joining, removed) ? Followed(entry, joining) : null;
        }

        if (entry.Connections is not { } keys || keys.Count != entry.Replicas.Count)
        {
            return NotJoined(entry.Shard, "its record names no configuration keys for the replicas added to it");
        }

        var added = keys.Skip(set.Replicas.Count).ToList();
        var addedRemoved = removed.Where(i => i >= set.Replicas.Count).Select(i => i - set.Replicas.Count).ToHashSet();
        if (await TailProblemAsync(entry.Shard, [.. added.Where((_, i) => !addedRemoved.Contains(i))]) is { } problem)
        {
            // The replicas this silo has still follow the record (an admission, a removal); the ones it cannot add wait.
            var known = set.Replicas.Count;
            shards.TryChange(entry.Shard, set.ConnectionStrings, joining.Where(i => i < known).ToHashSet(), removed.Where(i => i < known).ToHashSet());
            return NotJoined(entry.Shard, problem);
        }

        var resolved = added.ConvertAll(key => connections.Resolve(key) ?? RemovedReplica);

        if (shards.TryChange(entry.Shard, [.. set.ConnectionStrings, .. resolved], joining, removed))
        {
            Followed(entry, joining);
            await migrator.MigrateShardAsync(entry.Shard, deferIfDown: true, CancellationToken.None);
        }

        return null;
    }

    // Why this silo cannot take the replicas of these keys (a key it lacks, a database that is not the one added), or null.
    private async Task<string?> TailProblemAsync(int shard, List<string> keys)
    {
        var missing = keys.Where(key => connections.Resolve(key) is null).ToList();
        if (missing.Count > 0)
        {
            return $"configuration key {string.Join(", ", missing)} (a replica added to it) is not set on this silo";
        }

        foreach (var key in keys)
        {
            // The silo that added it claimed the database for the shard before recording it: one that answers unclaimed is
            // another database than the one added (this silo's key names another), and is never made a replica here.
            switch (await ClaimAsync(connections.Resolve(key)!))
            {
                case (true, { } owner) when owner != shard:
                    return $"{key} names a replica of shard {owner} on this silo";
                case (true, null):
                    return $"{key} names a database on this silo that is not the replica added (it is not claimed for the shard)";
            }
        }

        return null;
    }

    /// <summary>
    /// For a shard's writer before it opens: reads the shard's record, follows it as far as this silo can, and says why
    /// this silo's members are not the record's (a member it cannot follow: a key it lacks), or null when they are. A
    /// joining replica this silo cannot follow counts for nothing yet: it does not stop the writer.
    /// </summary>
    public async Task<string?> MembersProblemAsync(int shard)
    {
        var record = await grains.GetGrain<IActorGrain>(0, $"shard/{shard}", null).GetRecord();
        if (shard == 0 || record.Status != RecordStatus.Live || DirectoryGrain.TryToShardEntry(record) is not { } entry || Released(entry))
        {
            return null;
        }

        var problem = shards.Contains(shard) ? await FollowAsync(entry) : await JoinAsync(entry);
        if (!shards.Contains(shard))
        {
            return problem ?? $"shard {shard} is not known here";
        }

        var recorded = Enumerable.Range(0, entry.Replicas.Count).Where(i => entry.Joining?.Contains(i) != true && entry.Removed?.Contains(i) != true);
        return recorded.SequenceEqual(shards.Get(shard).Members) ? null
            : $"this silo cannot follow the members the directory records for shard {shard}: {problem ?? "its replicas differ"}";
    }

    private string? Followed(ShardEntry entry, HashSet<int> joining)
    {
        _notJoined.TryRemove(entry.Shard, out _);
        Log.ReplicasFollowed(logger, entry.Shard, entry.Replicas.Count, joining.Count == 0 ? "none" : string.Join(", ", joining.Order()));
        return null;
    }

    // Whether the database answered, and the shard it was claimed for (null: never claimed, or no answer).
    private static async Task<(bool Answered, int? Owner)> ClaimAsync(string connectionString)
    {
        try
        {
            await using var source = NpgsqlDataSource.Create(connectionString);
            using var timeout = new CancellationTokenSource(OwnerCheckTimeout);
            await using var command = source.CreateCommand("select (select shard from pr2_replica)");
            return (true, await command.ExecuteScalarAsync(timeout.Token).WaitAsync(timeout.Token) is int shard ? shard : null);
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.InvalidCatalogName)
        {
            return (true, null);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
        {
            return (false, null);
        }
    }

    // The shard a replica database was claimed for, or null when it does not answer (or was never claimed).
    private static async Task<int?> OwnerAsync(string connectionString)
    {
        try
        {
            await using var source = NpgsqlDataSource.Create(connectionString);
            using var timeout = new CancellationTokenSource(OwnerCheckTimeout);
            await using var command = source.CreateCommand("select shard from pr2_replica");
            return await command.ExecuteScalarAsync(timeout.Token).WaitAsync(timeout.Token) is int shard ? shard : null;
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
        {
            return null;
        }
    }

    private string NotJoined(int shard, string problem)
    {
        if (_notJoined.TryGetValue(shard, out var logged) is false || logged != problem)
        {
            _notJoined[shard] = problem;
            Log.ShardNotJoined(logger, shard, problem);
        }

        return problem;
    }
}
