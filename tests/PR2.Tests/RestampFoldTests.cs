using Npgsql;
using PR2.Grains.Agents;
using PR2.Grains.Json;
using PR2.Grains.Records;
using PR2.Grains.Storage;
using PR2.Grains.Writing;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// When replicas agree on a lower stamp for a message (pr2_restamp), every record it touches ends with that stamp, even
/// where the records agent keeps entries and records in memory: an entry taken from the writer's memory carries the
/// stamp it was committed under, and a refold on one runner must not leave another runner's cache believing it is
/// current. Entries and restamps are written straight into a real database, as anti-entropy writes them.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class RestampFoldTests(PostgresFixture postgres)
{
    private const int Shard = 1;

    [Fact]
    public async Task A_restamp_of_an_entry_the_agent_takes_from_the_writers_memory_still_reaches_the_record()
    {
        var (database, registry) = await DatabaseAsync("restamp_memory");
        var journal = registry.Get(Shard).Replicas[0];
        var insert = await DirectJournal.AppendAsync(database, Shard, 1, "acct/a", MessageKind.Insert, 5, 1);
        var recent = new RecentEntries();
        recent.Committed(journal, [insert]);

        // The replicas agree on 3@1 for the insert before the agent has applied it; the agent finds it in memory at 5@1.
        await DirectJournal.RestampAsync(database, Shard, insert.MessageId, 3);
        var runner = new AgentRunner(new RecordsProjector(), Shard, registry, new NoAgentFaults(), recent: recent);
        await runner.CatchUpAsync();
        await runner.CatchUpAsync(); // the pass after the mark moved: where a pending refold happens
        Assert.True(recent.Taken > 0, "the entry was not taken from memory: this test did not set up what it checks");

        var record = await RecordStore.ReadAsync(database, "acct/a");
        Assert.Equal(new LamportStamp(3, Shard), record.FirstStamp);
    }

    [Fact]
    public async Task A_refold_by_one_runner_empties_what_another_runner_keeps_in_memory()
    {
        var (database, registry) = await DatabaseAsync("restamp_cache");
        var insert = await DirectJournal.AppendAsync(database, Shard, 1, "acct/b", MessageKind.Insert, 5, 1);
        await DirectJournal.AppendAsync(database, Shard, 2, "acct/b", MessageKind.Modify, 7, 2);

        // Runner A applies both entries and keeps the record in memory, at mark 2.
        var a = new AgentRunner(new RecordsProjector(), Shard, registry, new NoAgentFaults());
        await a.CatchUpAsync();

        // The insert is restamped 3@1; runner B refolds the actor. No entry is applied: the mark stays at 2.
        await DirectJournal.RestampAsync(database, Shard, insert.MessageId, 3);
        var b = new AgentRunner(new RecordsProjector(), Shard, registry, new NoAgentFaults());
        await b.CatchUpAsync();
        Assert.Equal(new LamportStamp(3, Shard), (await RecordStore.ReadAsync(database, "acct/b")).FirstStamp);

        // A new entry; runner A applies it: from the record in the database, not the one it kept from before the refold.
        await DirectJournal.AppendAsync(database, Shard, 3, "acct/b", MessageKind.Modify, 9, 3);
        await a.CatchUpAsync();
        var record = await RecordStore.ReadAsync(database, "acct/b");
        Assert.Equal((new LamportStamp(3, Shard), new LamportStamp(9, Shard), 3L), (record.FirstStamp, record.LastStamp, record.Version));
    }

    private async Task<(NpgsqlDataSource Database, ShardRegistry Registry)> DatabaseAsync(string prefix)
    {
        var topology = postgres.CreateTopology(prefix, 0, Shard);
        await Migrations.MigrateAsync(topology.Settings);
        return (topology.Database(Shard), Migrations.Registry(topology.Settings));
    }
}
