using PR2.Client;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// Removing a shard (issue 24): the removal is a state machine in the shard's directory record. Once begun, the shard's
/// replicas, primary and metadata no longer change, configuration syncing on a silo's start does not revive it, and the
/// removal only moves forward, one state at a time.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ShardRemovalTests(PostgresFixture postgres)
{
    private const int Shard = 1;

    [Fact]
    public async Task A_removal_is_recorded_once_freezes_the_shards_replicas_and_metadata_and_outlives_a_sync_of_its_configuration()
    {
        var settings = TwoReplicas("removal_record");
        await using var cluster = await TestClusters.StartAsync(settings);
        var client = new Pr2Client(cluster.Client);
        var directory = cluster.Client.GetGrain<IDirectoryGrain>(0);
        var writer = cluster.Client.GetGrain<IShardWriterGrain>(Shard);
        await client.SendAsync(Shard, "item/before", MessageKind.Insert, "{}");

        var started = await directory.RemoveShard(Shard);
        Assert.Equal("removing", started.Status);
        Assert.Equal(ShardRemoval.Sealing, started.Removal?.State);
        var again = await directory.RemoveShard(Shard);
        Assert.Equal(started.Version, again.Version); // asked again: answered, not changed
        Assert.Equal(started.Removal, again.Removal);

        Assert.Equal(ErrorCode.BadMessage, (await Assert.ThrowsAsync<Pr2Exception>(() => directory.RemoveShard(0))).Code);
        Assert.Equal(ErrorCode.UnknownShard, (await Assert.ThrowsAsync<Pr2Exception>(() => directory.RemoveShard(77))).Code);

        // What the removal will seal does not change under it.
        var refusals = new (string What, Func<Task> Call)[]
        {
            ("a replica added", () => directory.AddReplica(Shard, "Pr2:Connections:removal_record_extra")),
            ("metadata set", () => directory.SetShardMetadata(Shard, "renamed", null, new Dictionary<string, string?>())),
            ("the primary moved", () => writer.MovePrimary(1)),
            ("a replica removed", () => writer.RemoveReplica(1)),
            ("a replica restored", () => cluster.Client.GetGrain<IReplicaRestoreGrain>($"{Shard}/1").Begin(
                new BackupManifest(1, Shard, 1, Guid.NewGuid(), 1, 0, 0, 0, 0, DateTimeOffset.UtcNow, [], "test"), replace: true)),
        };
        foreach (var (what, call) in refusals)
        {
            var refused = await Record.ExceptionAsync(call);
            Assert.True(refused is Pr2Exception { Code: ErrorCode.ShardRemoved }, $"{what} during the removal: {refused?.Message ?? "done"}");
        }

        // A silo starting with the shard still configured syncs configuration into the directory: the removal stays.
        await directory.Sync();
        var synced = (await directory.GetShards()).Single(s => s.Shard == Shard);
        Assert.Equal("removing", synced.Status);
        Assert.Equal(started.Removal, synced.Removal);
        Assert.Equal(2, synced.Replicas.Count);
        Assert.Null(synced.Removed);
        Assert.Equal(0, synced.Primary);

        // Forward only, one state at a time, draining with the sealed heads; a repeat finds it done.
        IReadOnlyDictionary<int, long> heads = new Dictionary<int, long> { [0] = 1, [1] = 1 };
        foreach (var (state, sealedHeads) in new[] { (ShardRemoval.Releasing, heads), (ShardRemoval.Draining, null), (ShardRemoval.Sealing, heads) })
        {
            var skipped = await Record.ExceptionAsync(() => directory.AdvanceShardRemoval(Shard, state, sealedHeads));
            Assert.True(skipped is Pr2Exception { Code: ErrorCode.BadMessage }, $"advanced to {state}: {skipped?.Message ?? "done"}");
        }

        var draining = await directory.AdvanceShardRemoval(Shard, ShardRemoval.Draining, heads);
        Assert.Equal(ShardRemoval.Draining, draining.Removal?.State);
        Assert.Equal(heads, draining.Removal?.SealedHeads);
        var repeated = await directory.AdvanceShardRemoval(Shard, ShardRemoval.Draining, new Dictionary<int, long> { [0] = 9, [1] = 9 });
        Assert.Equal(draining.Version, repeated.Version);
        Assert.Equal(heads, repeated.Removal?.SealedHeads);
    }

    // Shard 0 and two replicas of the shard, on one server; a third database under a connection key of its own.
    private Dictionary<string, string?> TwoReplicas(string name)
    {
        var key = $"Pr2:Topology:Shards:{Shard}:Replicas:0";
        var settings = new Dictionary<string, string?>(postgres.CreateTopology(name, 0).Settings)
        {
            [key] = postgres.CreateTopology($"{name}_a", Shard).Settings[key],
            [$"Pr2:Topology:Shards:{Shard}:Replicas:1"] = postgres.CreateTopology($"{name}_b", Shard).Settings[key],
            [$"Pr2:Connections:{name}_extra"] = postgres.CreateTopology($"{name}_c", Shard).Settings[key],
        };
        return settings;
    }
}
