using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using PR2.Grains.Configuration;

namespace PR2.Grains.Storage;

/// <summary>
/// Keeps this silo's <see cref="ShardRegistry"/> up with the directory: a shard recorded there (<c>shard/{code}</c> in
/// shard 0, with the configuration keys of its replicas' connection strings) that this silo does not know joins it,
/// its schema checked. The agent supervisor refreshes every few seconds; a request for a shard this silo does not know
/// asks the directory first (<see cref="KnowsAsync"/>), so "unknown shard" is never said of one that was just added.
/// </summary>
public sealed class TopologyFollower(ShardRegistry shards, SchemaMigrator migrator, ConnectionKeys connections, IGrainFactory grains, ILogger<TopologyFollower> logger)
{
    private readonly ConcurrentDictionary<int, string> _notJoined = new();

    /// <summary>Joins every shard the directory lists that this silo does not know yet.</summary>
    public async Task RefreshAsync()
    {
        foreach (var entry in await grains.GetGrain<IDirectoryGrain>(0).GetShards())
        {
            if (!shards.Contains(entry.Shard))
            {
                await JoinAsync(entry);
            }
        }
    }

    /// <summary>Whether <paramref name="shard"/> is a shard of the cluster: known here, or recorded in the directory (then it joins).</summary>
    public async Task<bool> KnowsAsync(long shard)
    {
        if (shard is < 0 or > int.MaxValue)
        {
            return false;
        }

        var code = (int)shard;
        if (shards.Contains(code))
        {
            return true;
        }

        // Not remembered as unknown: it may be added the next moment. The record's actor answers from one index probe, what
        // any read costs.
        var record = await grains.GetGrain<IActorGrain>(0, $"shard/{code}", null).GetRecord();
        return record.Status == RecordStatus.Live && await JoinAsync(DirectoryGrain.ToShardEntry(record));
    }

    /// <summary>Registers the shard with the connection strings its keys name here; false when a key is not set on this silo.</summary>
    public async Task<bool> JoinAsync(ShardEntry entry)
    {
        if (entry.Connections is not { Count: > 0 } keys)
        {
            return false; // recorded before connections were: a configured shard, which every silo knows from its configuration
        }

        var missing = keys.Where(key => connections.Resolve(key) is null).ToList();
        if (missing.Count > 0)
        {
            var problem = $"configuration key {string.Join(", ", missing)} is not set on this silo";
            if (_notJoined.TryAdd(entry.Shard, problem))
            {
                Log.ShardNotJoined(logger, entry.Shard, problem);
            }

            return false;
        }

        var topology = new ShardTopology
        {
            Replicas = [.. keys.Select(key => connections.Resolve(key)!)],
            AckPolicy = Enum.TryParse<AckPolicy>(entry.AckPolicy, out var policy) ? policy : AckPolicy.Primary,
        };
        if (shards.TryAdd(entry.Shard, topology))
        {
            _notJoined.TryRemove(entry.Shard, out _);
            Log.ShardJoined(logger, entry.Shard, keys.Count, topology.AckPolicy.ToString());
            await migrator.MigrateShardAsync(entry.Shard, deferIfDown: true, CancellationToken.None);
        }

        return true;
    }
}
