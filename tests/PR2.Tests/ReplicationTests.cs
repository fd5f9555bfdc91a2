using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using PR2.Client;
using PR2.Grains.Agents;
using PR2.Grains.Json;
using PR2.Grains.Replication;
using PR2.Grains.Storage;
using PR2.Grains.Writing;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// Replicas of a shard on two PostgreSQL servers converge by anti-entropy: the same entries (each
/// MessageId once), equal version vectors, and byte-equal records, also when both replicas took writes.
/// </summary>
public sealed class ReplicationTests(TwoPostgresServers servers) : IClassFixture<TwoPostgresServers>
{
    private const int Shard = 1;
    private readonly PostgresFixture _serverA = servers.A;
    private readonly PostgresFixture _serverB = servers.B;

    [Fact]
    public async Task Anti_entropy_gives_the_second_replica_every_entry_and_the_same_records()
    {
        var (settings, a, b) = TwoReplicaTopology("ae");
        await using var cluster = await TestClusters.StartAsync(settings);
        var client = new Pr2Client(cluster.Client);
        var actors = Enumerable.Range(0, 20).Select(i => $"order/{i}").ToList();
        foreach (var round in Enumerable.Range(0, 8))
        {
            await Task.WhenAll(actors.Select(actor => client.SendAsync(Shard, actor,
                round == 0 ? MessageKind.Insert : round == 7 && actor.EndsWith('3') ? MessageKind.Cancel : MessageKind.Modify,
                $$"""{"round": {{round}}, "r{{round}}": "x"}""")));
        }

        await Eventually.TrueAsync(async () =>
        {
            var shard = (await client.GetStatusAsync()).Shards.Single(s => s.Shard == Shard);
            return shard.Replicas.All(r => r.Reachable && r.Behind == 0 && r.Head == shard.Head);
        }, TimeSpan.FromSeconds(30), "replica 1 holds everything replica 0 holds");
        await client.CatchUpAsync(RecordsProjector.AgentName, Shard, replica: 0);
        await client.CatchUpAsync(RecordsProjector.AgentName, Shard, replica: 1);

        Assert.Equal(await ReplicaContents.MessageIdsAsync(a), await ReplicaContents.MessageIdsAsync(b));
        await AssertContiguousAsync(b);
        Assert.True((await VersionVector.ReadAsync(a)).SameAs(await VersionVector.ReadAsync(b)));
        Assert.Equal(await ReplicaContents.RecordsAsync(a, withPosition: true), await ReplicaContents.RecordsAsync(b, withPosition: true));
    }

    [Fact]
    public async Task Replicas_that_both_took_writes_converge_and_a_message_written_at_both_is_kept_once()
    {
        var (settings, a, b) = TwoReplicaTopology("two_origins");
        await Migrations.MigrateAsync(settings);
        await using var registry = Migrations.Registry(settings);

        // Two writers, one per replica: what a partition followed by a fail-over leaves behind.
        await using (var writerA = await JournalWriter.OpenAsync(Shard, a, 100, NullLogger.Instance))
        await using (var writerB = await JournalWriter.OpenAsync(Shard, b, 100, NullLogger.Instance))
        {
            // The shared message is committed first at A and last at B: two copies with different stamps.
            var shared = Request("order/shared", MessageKind.Insert, """{"by": "both"}""", 1, Guid.NewGuid());
            await writerA.AppendAsync(shared);
            for (var i = 0; i < 40; i++)
            {
                await writerA.AppendAsync(Request($"order/a{i % 8}", i < 8 ? MessageKind.Insert : MessageKind.Modify, $$"""{"a": {{i}}}""", 1 + (i / 8), Guid.NewGuid()));
                if (i < 25)
                {
                    await writerB.AppendAsync(Request($"order/b{i % 5}", i < 5 ? MessageKind.Insert : MessageKind.Modify, $$"""{"b": {{i}}}""", 1 + (i / 5), Guid.NewGuid()));
                }
            }

            await writerB.AppendAsync(shared);
        }

        // Each replica's records already folded its own copy before they meet: the sync must make them refold.
        foreach (var replica in new[] { 0, 1 })
        {
            await new AgentRunner(new RecordsProjector(), Shard, registry, new NoAgentFaults(), replica: replica).CatchUpAsync();
        }

        Assert.NotEqual(await ReplicaContents.RecordsAsync(a, withPosition: false), await ReplicaContents.RecordsAsync(b, withPosition: false));

        // Small batches, both directions, until nothing moves (bounded: a sync that never settles fails).
        var rounds = 0;
        while (await ReplicaSync.PushAsync(a, b, batchSize: 7) + await ReplicaSync.PushAsync(b, a, batchSize: 7) > 0)
        {
            Assert.True(++rounds < 100, "anti-entropy did not settle");
        }

        var idsA = await ReplicaContents.MessageIdsAsync(a);
        Assert.Equal(1 + 40 + 25, idsA.Count);
        Assert.Equal(idsA, await ReplicaContents.MessageIdsAsync(b));
        await AssertContiguousAsync(a);
        await AssertContiguousAsync(b);
        var vectorA = await VersionVector.ReadAsync(a);
        Assert.True(vectorA.SameAs(await VersionVector.ReadAsync(b)));
        Assert.Equal([41L, 26L], vectorA.Positions.Values.Order().Reverse());

        foreach (var replica in new[] { 0, 1 })
        {
            await new AgentRunner(new RecordsProjector(), Shard, registry, new NoAgentFaults(), replica: replica).CatchUpAsync();
        }

        // One stamp for the shared message everywhere: the lower (A's); B recorded it.
        var stamps = await Task.WhenAll(new[] { a, b }.Select(async replica =>
            (await JournalStore.ReadActorAsync(replica, new ActorRef(Shard, "order/shared"))).Single().Stamp));
        Assert.Equal(stamps[0], stamps[1]);
        await using (var restamps = b.CreateCommand("select count(*) from pr2_restamp"))
        {
            Assert.Equal(1L, await restamps.ExecuteScalarAsync());
        }

        // Positions differ between the replicas (arrival order); everything else is byte-equal.
        Assert.Equal(await ReplicaContents.RecordsAsync(a, withPosition: false), await ReplicaContents.RecordsAsync(b, withPosition: false));
        Assert.Equal(14, (await ReplicaContents.RecordsAsync(a, withPosition: false)).Count);
    }

    private (Dictionary<string, string?> Settings, NpgsqlDataSource A, NpgsqlDataSource B) TwoReplicaTopology(string prefix)
    {
        var control = _serverA.CreateTopology(prefix, 0);
        var onA = _serverA.CreateTopology(prefix + "_a", Shard);
        var onB = _serverB.CreateTopology(prefix + "_b", Shard);
        var settings = new Dictionary<string, string?>(control.Settings)
        {
            [$"Pr2:Topology:Shards:{Shard}:Replicas:0"] = onA.Settings[$"Pr2:Topology:Shards:{Shard}:Replicas:0"],
            [$"Pr2:Topology:Shards:{Shard}:Replicas:1"] = onB.Settings[$"Pr2:Topology:Shards:{Shard}:Replicas:0"],
        };
        return (settings, onA.Database(Shard), onB.Database(Shard));
    }

    private static AppendRequest Request(string actorId, MessageKind kind, string body, long version, Guid id)
    {
        var actor = new ActorRef(Shard, actorId);
        var parsed = MessageBody.Parse(kind, body, 1024);
        return new AppendRequest(new Message(id, "test", actor, kind, parsed.Canonical), parsed.Canonical,
            MessageBody.ContentHash(actor, kind, parsed.Canonical), version);
    }

    private static async Task AssertContiguousAsync(NpgsqlDataSource database)
    {
        await using var command = database.CreateCommand("select count(*), coalesce(min(position), 1), coalesce(max(position), 0), (select position from pr2_writer_head) from pr2_journal");
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        var (count, min, max, head) = (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3));
        Assert.Equal((1L, count, count), (min, max, head));
    }
}
