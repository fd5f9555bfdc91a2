using Microsoft.Extensions.Logging.Abstractions;
using PR2.Grains.Agents;
using PR2.Grains.Replication;
using PR2.Grains.Storage;
using PR2.Grains.Writing;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// An atomic batch is seen whole or not at all, also where entries are read in pages: an agent (whose mark is what
/// session and eventual reads see) and anti-entropy (what a replica holds) never stop inside a commit, however small
/// their page.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class BatchVisibilityTests(PostgresFixture postgres)
{
    private const int Shard = 1;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task An_agent_page_cut_inside_a_commit_goes_on_to_its_end(bool fromMemory)
    {
        var topology = postgres.CreateTopology($"vis_agent_{(fromMemory ? "m" : "j")}", 0, Shard);
        await Migrations.MigrateAsync(topology.Settings);
        await using var registry = Migrations.Registry(topology.Settings);
        var recent = fromMemory ? new RecentEntries() : null;
        await using var writer = await JournalWriter.OpenAsync(Shard, registry.Get(Shard).Primary, 1000, NullLogger.Instance, recent: recent);
        var records = new AgentRunner(new RecordsProjector(), Shard, registry, new NoAgentFaults(), batchSize: 50, recent: recent);

        await writer.AppendAsync(Appends.Request(new ActorRef(Shard, "order/single"), MessageKind.Insert, 1));
        await writer.AppendBatchAsync([.. Enumerable.Range(0, 120).Select(i => Appends.Request(new ActorRef(Shard, $"order/b{i % 40}"), i < 40 ? MessageKind.Insert : MessageKind.Modify, 0))]);
        await writer.AppendAsync(Appends.Request(new ActorRef(Shard, "order/after"), MessageKind.Insert, 1));

        // The single insert, then the batch: the page of 50 stops inside the batch and goes on to its end.
        Assert.Equal(121, await records.RunOnceAsync());
        Assert.Equal(1, await records.RunOnceAsync());
        Assert.Equal(0, await records.RunOnceAsync());
    }

    [Fact]
    public async Task The_object_directory_lists_a_batch_of_inserts_whole()
    {
        var topology = postgres.CreateTopology("vis_directory", 0, Shard);
        await Migrations.MigrateAsync(topology.Settings);
        await using var registry = Migrations.Registry(topology.Settings);
        await using var writer = await JournalWriter.OpenAsync(Shard, registry.Get(Shard).Primary, 1000, NullLogger.Instance);
        var directory = new AgentRunner(new ObjectDirectoryProjector(), Shard, registry, new NoAgentFaults(), batchSize: 50);

        await writer.AppendBatchAsync([.. Enumerable.Range(0, 120).Select(i => Appends.Request(new ActorRef(Shard, $"order/d{i}"), MessageKind.Insert, 0))]);
        await writer.AppendAsync(Appends.Request(new ActorRef(Shard, "order/after"), MessageKind.Insert, 1));

        Assert.Equal(120, await directory.RunOnceAsync());
        Assert.Equal(120, await topology.ScalarAsync(0, "select count(*) from pr2_object_directory where actor_id like 'order/d%'"));
        Assert.Equal(1, await directory.RunOnceAsync());
    }

    [Fact]
    public async Task Anti_entropy_copies_a_commit_whole_whatever_its_page_size()
    {
        var a = postgres.CreateTopology("vis_ae_a", 0, Shard);
        var b = postgres.CreateTopology("vis_ae_b", 0, Shard);
        await Migrations.MigrateAsync(a.Settings);
        await Migrations.MigrateAsync(b.Settings);
        await using var registryA = Migrations.Registry(a.Settings);
        await using var registryB = Migrations.Registry(b.Settings);
        var (source, target) = (registryA.Get(Shard).Primary, registryB.Get(Shard).Primary);
        await using (var writer = await JournalWriter.OpenAsync(Shard, source, 1000, NullLogger.Instance))
        {
            await writer.AppendBatchAsync([.. Enumerable.Range(0, 150).Select(i => Appends.Request(new ActorRef(Shard, $"order/{i}"), MessageKind.Insert, 0))]);
            await writer.AppendAsync(Appends.Request(new ActorRef(Shard, "order/after"), MessageKind.Insert, 1));
        }

        Assert.Equal(150, await ReplicaSync.PushAsync(source, target, batchSize: 100));
        Assert.Equal(150, await b.JournalCountAsync(Shard));
        Assert.Equal(1, await ReplicaSync.PushAsync(source, target, batchSize: 100));

        // A second hop (from the replica that imported it) keeps it whole too: the import was one transaction.
        var c = postgres.CreateTopology("vis_ae_c", 0, Shard);
        await Migrations.MigrateAsync(c.Settings);
        await using var registryC = Migrations.Registry(c.Settings);
        Assert.Equal(150, await ReplicaSync.PushAsync(target, registryC.Get(Shard).Primary, batchSize: 30));
    }
}
