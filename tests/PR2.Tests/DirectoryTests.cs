using Microsoft.Extensions.DependencyInjection;
using PR2.Client;
using PR2.Grains.Agents;
using PR2.Grains.Storage;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// The directory lives in shard 0 as journaled records: it survives a full cluster restart, records a
/// topology change as a new message (and an unchanged topology as nothing), records what each shard is (seeded by
/// configuration once, then changed there alone), and the object directory finds actors of every shard by type and prefix.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class DirectoryTests(PostgresFixture postgres)
{
    [Fact]
    public async Task The_directory_survives_a_full_restart_and_journals_each_topology_change_once()
    {
        var topology = postgres.CreateTopology("directory", 0, 1, 2);
        IReadOnlyList<ShardEntry> before;
        await using (var cluster = await TestClusters.StartAsync(topology.Settings))
        {
            var client = new Pr2Client(cluster.Client);
            before = await client.GetShardsAsync();
            Assert.Equal([0, 1, 2], before.Select(s => s.Shard));
            Assert.All(before, s => Assert.Equal((1, "up", 0, 1L), (s.Replicas.Count, s.Status, s.Primary, s.Version)));
            Assert.EndsWith("_s1", before[1].Replicas[0], StringComparison.Ordinal);
            Assert.All(before, s => Assert.Equal(["up"], s.ReplicaStates));

            var agents = await client.GetAgentsAsync();
            Assert.Equal([ObjectDirectoryProjector.AgentName, RecordsProjector.AgentName], agents.Keys);
            Assert.Equal([0, 1, 2], agents[RecordsProjector.AgentName]);
        }

        var journalBefore = await topology.JournalCountAsync(0);
        await using (var cluster = await TestClusters.StartAsync(topology.Settings))
        {
            var client = new Pr2Client(cluster.Client);
            Assert.Equal(before, await client.GetShardsAsync(), ShardEntryComparer.Instance);
        }

        // Unchanged topology: the restart wrote nothing to shard 0.
        Assert.Equal(journalBefore, await topology.JournalCountAsync(0));

        // A new shard: one insert for shard/3 and one modify per agent (it now follows shard 3 too).
        var grown = postgres.CreateTopology("directory_grown", 3);
        var settings = new Dictionary<string, string?>(topology.Settings) { ["Pr2:Topology:Shards:3:Replicas:0"] = grown.Settings["Pr2:Topology:Shards:3:Replicas:0"] };
        await using (var cluster = await TestClusters.StartAsync(settings))
        {
            var client = new Pr2Client(cluster.Client);
            Assert.Equal([0, 1, 2, 3], (await client.GetShardsAsync()).Select(s => s.Shard));
            Assert.Equal([0, 1, 2, 3], (await client.GetAgentsAsync())[RecordsProjector.AgentName]);
        }

        Assert.Equal(journalBefore + 3, await topology.JournalCountAsync(0));
    }

    [Fact]
    public async Task What_a_shard_is_is_seeded_by_configuration_then_changed_in_the_directory_alone_as_journaled_changes()
    {
        var topology = postgres.CreateTopology("shard_metadata", 0, 1);
        var settings = new Dictionary<string, string?>(topology.Settings)
        {
            ["Pr2:Topology:Shards:1:Name"] = "Acme Ltd",
            ["Pr2:Topology:Shards:1:Owner"] = "team-billing",
            ["Pr2:Topology:Shards:1:Labels:region"] = "eu-west",
            ["Pr2:Topology:Shards:1:Labels:tier"] = "gold",
        };
        await using (var cluster = await TestClusters.StartAsync(settings))
        {
            var client = new Pr2Client(cluster.Client);
            var seeded = (await client.GetShardsAsync()).Single(s => s.Shard == 1);
            Assert.Equal(("Acme Ltd", "team-billing"), (seeded.Name, seeded.Owner));
            Assert.Equal(new Dictionary<string, string> { ["region"] = "eu-west", ["tier"] = "gold" }, seeded.Labels);
            Assert.Null((await client.GetShardsAsync()).Single(s => s.Shard == 0).Name);

            var journal = await topology.JournalCountAsync(0);
            var changed = await client.SetShardMetadataAsync(1, owner: "team-ledger", labels: new Dictionary<string, string?> { ["tier"] = null, ["dr"] = "on" });
            Assert.Equal(("Acme Ltd", "team-ledger", seeded.Version + 1), (changed.Name, changed.Owner, changed.Version));
            Assert.Equal(new Dictionary<string, string> { ["region"] = "eu-west", ["dr"] = "on" }, changed.Labels);
            Assert.Equal(journal + 1, await topology.JournalCountAsync(0));
            Assert.Equal(seeded.Replicas, changed.Replicas);

            // Refused, and nothing written: a bad label key, too long a name, an unknown shard.
            var badKey = await Assert.ThrowsAsync<Pr2Exception>(() => client.SetShardMetadataAsync(1, labels: new Dictionary<string, string?> { ["no spaces"] = "x" }));
            Assert.Equal(ErrorCode.BadMessage, badKey.Code);
            Assert.Contains("no spaces", badKey.Message, StringComparison.Ordinal);
            Assert.Equal(ErrorCode.BadMessage, (await Assert.ThrowsAsync<Pr2Exception>(() => client.SetShardMetadataAsync(1, name: new string('n', 201)))).Code);
            Assert.Equal(ErrorCode.UnknownShard, (await Assert.ThrowsAsync<Pr2Exception>(() => client.SetShardMetadataAsync(7, name: "nope"))).Code);
            Assert.Equal(journal + 1, await topology.JournalCountAsync(0));
            Assert.Equal("", (await client.SetShardMetadataAsync(1, name: "")).Name ?? "");
        }

        // After the first start the directory is the truth: configuration saying otherwise changes nothing.
        settings["Pr2:Topology:Shards:1:Name"] = "Configured Again";
        await using (var cluster = await TestClusters.StartAsync(settings))
        {
            var again = (await new Pr2Client(cluster.Client).GetShardsAsync()).Single(s => s.Shard == 1);
            Assert.Equal((null, "team-ledger"), (again.Name, again.Owner));
            Assert.Equal(new Dictionary<string, string> { ["region"] = "eu-west", ["dr"] = "on" }, again.Labels);
        }
    }

    [Fact]
    public async Task The_object_directory_finds_actors_of_every_shard_by_type_and_prefix()
    {
        var topology = postgres.CreateTopology("objects", 0, 1, 2);
        await using var cluster = await TestClusters.StartAsync(topology.Settings);
        var client = new Pr2Client(cluster.Client);
        await client.SendAsync(1, "invoice/2026-001", MessageKind.Insert, "{}");
        await client.SendAsync(2, "invoice/2026-002", MessageKind.Insert, "{}");
        await client.SendAsync(2, "invoice/2025-900", MessageKind.Insert, "{}");
        await client.SendAsync(1, "invoice_line/2026-001", MessageKind.Insert, "{}");
        await client.SendAsync(0, "invoice/2026-000", MessageKind.Insert, "{}");
        await client.SendAsync(2, "invoice/2026-002", MessageKind.Cancel, "{}");
        foreach (var shard in new[] { 0, 1, 2 })
        {
            await client.CatchUpAsync(ObjectDirectoryProjector.AgentName, shard);
        }

        var found = await client.FindObjectsAsync("invoice", "invoice/2026-");
        Assert.Equal(
            [(0, "invoice/2026-000", RecordStatus.Live), (1, "invoice/2026-001", RecordStatus.Live), (2, "invoice/2026-002", RecordStatus.Canceled)],
            found.Select(o => (o.Shard, o.ActorId, o.Status)));

        // A prefix is literal: '_' is not a wildcard.
        Assert.Empty(await client.FindObjectsAsync(null, "invoice_2026"));
        Assert.Single(await client.FindObjectsAsync(null, "invoice_line/"));

        var types = await client.GetActorTypesAsync();
        Assert.Contains(new ActorTypeCount("invoice", 3, 1), types);
        Assert.Contains(new ActorTypeCount("invoice_line", 1, 0), types);
    }

    [Fact]
    public async Task The_object_directory_reads_only_inserts_and_cancels_and_its_mark_still_reaches_the_head()
    {
        var topology = postgres.CreateTopology("lifecycle", 0, 1);
        await using var cluster = await TestClusters.StartAsync(topology.Settings);
        var client = new Pr2Client(cluster.Client);
        var acks = new List<WriteAck>
        {
            await client.SendAsync(1, "ticket/a", MessageKind.Insert, """{"n": 0}"""),
            await client.SendAsync(1, "ticket/b", MessageKind.Insert, """{"n": 0}"""),
        };
        for (var n = 1; n <= 6; n++)
        {
            acks.Add(await client.SendAsync(1, n % 2 == 0 ? "ticket/a" : "ticket/b", MessageKind.Modify, $$"""{"n": {{n}}}"""));
        }

        acks.Add(await client.SendAsync(1, "ticket/b", MessageKind.Cancel, ""));
        acks.Add(await client.SendAsync(1, "ticket/c", MessageKind.Insert, "{}"));
        acks.Add(await client.SendAsync(1, "ticket/a", MessageKind.Modify, """{"n": 7}"""));
        var head = acks[^1].Position;

        // Any window of positions: the entries that are not modifies, and the bound the window reached.
        var shard1 = cluster.Silos[0].SiloHost.Services.GetRequiredService<ShardRegistry>().Get(1).Primary;
        var lifecycle = acks.Where(ack => ack.Actor.ActorId == "ticket/c" || ack.Version == 1 || ack == acks[^3]).Select(ack => ack.Position).ToList();
        for (var after = 0L; after <= head; after++)
        {
            foreach (var size in new[] { 1, 2, 3, 500 })
            {
                var (bound, entries) = await JournalStore.ReadInsertsAndCancelsAsync(shard1, 1, after, after + size);
                Assert.Equal(Math.Min(after + size, head), bound);
                Assert.Equal(lifecycle.Where(p => p > after && p <= bound), entries.Select(e => e.Position));
            }
        }

        Assert.Equal(head, await client.CatchUpAsync(ObjectDirectoryProjector.AgentName, 1));
        var found = await client.FindObjectsAsync("ticket");
        Assert.Equal(
            [("ticket/a", RecordStatus.Live, acks[0].Position), ("ticket/b", RecordStatus.Canceled, acks[1].Position), ("ticket/c", RecordStatus.Live, acks[^2].Position)],
            found.Select(o => (o.ActorId, o.Status, o.FirstPosition)));
    }

    private sealed class ShardEntryComparer : IEqualityComparer<ShardEntry>
    {
        public static readonly ShardEntryComparer Instance = new();

        public bool Equals(ShardEntry? x, ShardEntry? y) =>
            x is not null && y is not null && (x.Shard, x.Primary, x.Status, x.Version) == (y.Shard, y.Primary, y.Status, y.Version) && x.Replicas.SequenceEqual(y.Replicas)
            && x.ReplicaStates.SequenceEqual(y.ReplicaStates);

        public int GetHashCode(ShardEntry obj) => obj.Shard;
    }
}
