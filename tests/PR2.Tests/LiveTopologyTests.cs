using Npgsql;
using PR2.Client;
using PR2.Tests.Infrastructure;
using PR2.Tests.Streams;

namespace PR2.Tests;

/// <summary>
/// The directory is the topology: a shard added to a running two-silo cluster (its database created, its schema applied,
/// its record journaled in shard 0 with the configuration keys of its connection strings, never the strings) takes writes
/// and reads on every silo at once, its agents start, adding it again answers the same, and a cluster started again
/// from the same configuration (which does not list the shard) knows it from the directory.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class LiveTopologyTests(PostgresFixture postgres)
{
    private const int NewShard = 7;
    private const string ConnectionKey = "Pr2:Connections:live-7";
    private const string OtherKey = "Pr2:Connections:live-other";
    private const string SameDatabaseKey = "Pr2:Connections:live-other-again";
    private const string ShardOneKey = "Pr2:Connections:shard-one";

    [Fact]
    public async Task A_shard_added_at_runtime_takes_writes_on_every_silo_at_once_and_survives_a_restart()
    {
        var topology = postgres.CreateTopology("live_topology", 0, 1);
        var settings = new Dictionary<string, string?>(topology.Settings)
        {
            [ConnectionKey] = postgres.Server.ConnectionString($"live_topology_{Guid.NewGuid():N}"[..40]),
            [OtherKey] = postgres.Server.ConnectionString($"live_topology_{Guid.NewGuid():N}"[..40]),
            [ShardOneKey] = topology.Settings["Pr2:Topology:Shards:1:Replicas:0"],
        };
        settings[SameDatabaseKey] = settings[OtherKey];
        var actors = Enumerable.Range(0, 24).Select(i => $"order/{i}").ToList();
        await using (var cluster = await TestClusters.StartAsync(settings, silos: 2))
        {
            var client = new Pr2Client(cluster.Client);
            var unknown = await Assert.ThrowsAsync<Pr2Exception>(() => client.SendAsync(NewShard, "order/0", MessageKind.Insert, "{}"));
            Assert.Equal(ErrorCode.UnknownShard, unknown.Code);
            // An actor activated while its shard was unknown (a read) must not go on saying so once the shard is added.
            Assert.Equal(ErrorCode.UnknownShard, (await Assert.ThrowsAsync<Pr2Exception>(() => client.GetRecordAsync(NewShard, "order/1"))).Code);

            var added = await client.AddShardAsync(new NewShard(NewShard, [ConnectionKey], "Primary", "Acme", "ops", new Dictionary<string, string> { ["region"] = "eu" }));
            Assert.Equal((NewShard, "Acme", "Primary"), (added.Shard, added.Name, added.AckPolicy));
            Assert.Equal([ConnectionKey], added.Connections!); // the key, never the connection string

            // At once, on both silos (24 actors are placed on both): no unknown shard, no retry.
            var acks = await Task.WhenAll(actors.Select(actor => client.SendAsync(NewShard, actor, MessageKind.Insert, $$"""{"by": "{{actor}}"}""")));
            Assert.All(acks, ack => Assert.Equal(1, ack.Version));
            var read = await client.GetRecordAsync(NewShard, "order/1");
            Assert.Equal(RecordStatus.Live, read.Status);

            // A message caused by an entry of the new shard is one of this cluster's, on every silo.
            var caused = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => client.SendAsync(
                new Message(Guid.NewGuid(), "test", new ActorRef(1, $"audit/{i}"), MessageKind.Insert, "{}", CausedBy: acks[i].Stamp))));
            Assert.All(caused, ack => Assert.Equal(1, ack.Version));

            // Its agents run: the records view folds the inserts.
            await Eventually.TrueAsync(async () => (await client.QueryRecordsAsync(NewShard, "order")).Records.Count == actors.Count,
                TimeSpan.FromSeconds(30), "the records view of the new shard holds every insert");

            // Its journal stream starts without a restart: an implicit subscriber gets the new shard's entries, once each.
            var streamed = await Task.WhenAll(Enumerable.Range(0, 5).Select(i => client.SendAsync(NewShard, $"streamtest/{i}", MessageKind.Insert, "{}")));
            IReadOnlyList<(JournalEntry Entry, string Token)> received = [];
            await Eventually.TrueAsync(async () => (received = await cluster.Client.GetGrain<IStreamRecorderGrain>(NewShard).Received()).Count >= streamed.Length,
                TimeSpan.FromSeconds(60), "the new shard's journal stream delivered its entries");
            Assert.Equal(streamed.Select(a => a.MessageId).Order(), received.Select(r => r.Entry.MessageId).Order());

            // Adding it again answers the same; another shard under the same code is refused.
            Assert.Equal(NewShard, (await client.AddShardAsync(new NewShard(NewShard, [ConnectionKey], "Primary", "Acme"))).Shard);
            var other = await Assert.ThrowsAsync<Pr2Exception>(() => client.AddShardAsync(new NewShard(NewShard, [OtherKey])));
            Assert.Equal(ErrorCode.RecordExists, other.Code);
            var stricter = await Assert.ThrowsAsync<Pr2Exception>(() => client.AddShardAsync(new NewShard(NewShard, [ConnectionKey], "All")));
            Assert.Equal(ErrorCode.RecordExists, stricter.Code);
            var twice = await Assert.ThrowsAsync<Pr2Exception>(() => client.AddShardAsync(new NewShard(8, [OtherKey, SameDatabaseKey])));
            Assert.Equal((ErrorCode.BadMessage, true), (twice.Code, twice.Message.Contains("same database", StringComparison.Ordinal)));
            var taken = await Assert.ThrowsAsync<Pr2Exception>(() => client.AddShardAsync(new NewShard(8, [ShardOneKey])));
            Assert.Equal((ErrorCode.BadMessage, true), (taken.Code, taken.Message.Contains("replica of another shard", StringComparison.Ordinal)));
            Assert.DoesNotContain(8, (await client.GetShardsAsync()).Select(s => s.Shard));
            var missingKey = await Assert.ThrowsAsync<Pr2Exception>(() => client.AddShardAsync(new NewShard(8, ["Pr2:Connections:nowhere"])));
            Assert.Equal(ErrorCode.BadMessage, missingKey.Code);
            Assert.Contains("Pr2:Connections:nowhere", missingKey.Message);

            var listed = (await client.GetShardsAsync()).Single(s => s.Shard == NewShard);
            Assert.Equal(("Acme", "ops"), (listed.Name, listed.Owner));
        }

        // The configuration still lists shards 0 and 1 only: the directory brings shard 7 back.
        await using (var cluster = await TestClusters.StartAsync(settings, silos: 2))
        {
            var client = new Pr2Client(cluster.Client);
            var again = await client.SendAsync(NewShard, "order/5", MessageKind.Modify, """{"after": "restart"}""");
            Assert.Equal(2, again.Version);
            Assert.Contains(NewShard, (await client.GetShardsAsync()).Select(s => s.Shard));
        }
    }
}
