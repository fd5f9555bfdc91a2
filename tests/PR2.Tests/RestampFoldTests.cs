using Npgsql;
using PR2.Grains.Agents;
using PR2.Grains.Json;
using PR2.Grains.Projections;
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
        var insert = await AppendAsync(database, 1, "acct/a", MessageKind.Insert, 5, 1);
        var recent = new RecentEntries();
        recent.Committed(journal, [insert]);

        // The replicas agree on 3@1 for the insert before the agent has applied it; the agent finds it in memory at 5@1.
        await RestampAsync(database, insert.MessageId, 3);
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
        var insert = await AppendAsync(database, 1, "acct/b", MessageKind.Insert, 5, 1);
        await AppendAsync(database, 2, "acct/b", MessageKind.Modify, 7, 2);

        // Runner A applies both entries and keeps the record in memory, at mark 2.
        var a = new AgentRunner(new RecordsProjector(), Shard, registry, new NoAgentFaults());
        await a.CatchUpAsync();

        // The insert is restamped 3@1; runner B refolds the actor. No entry is applied: the mark stays at 2.
        await RestampAsync(database, insert.MessageId, 3);
        var b = new AgentRunner(new RecordsProjector(), Shard, registry, new NoAgentFaults());
        await b.CatchUpAsync();
        Assert.Equal(new LamportStamp(3, Shard), (await RecordStore.ReadAsync(database, "acct/b")).FirstStamp);

        // A new entry; runner A applies it: from the record in the database, not the one it kept from before the refold.
        await AppendAsync(database, 3, "acct/b", MessageKind.Modify, 9, 3);
        await a.CatchUpAsync();
        var record = await RecordStore.ReadAsync(database, "acct/b");
        Assert.Equal((new LamportStamp(3, Shard), new LamportStamp(9, Shard), 3L), (record.FirstStamp, record.LastStamp, record.Version));
    }

    [Fact]
    public async Task A_restamp_recorded_while_a_rebuild_folds_reaches_the_rebuilt_view()
    {
        var (database, registry) = await DatabaseAsync("restamp_rebuild");
        var insert = await AppendAsync(database, 1, "acct/c", MessageKind.Insert, 5, 1);
        await AppendAsync(database, 2, "acct/c", MessageKind.Modify, 7, 2);
        await new AgentRunner(new RecordsProjector(), Shard, registry, new NoAgentFaults()).CatchUpAsync();

        // The rebuild's fold has passed the insert when the replicas agree on 3@1 for it.
        Assert.Equal(1L, await RecordsRebuild.StartAsync(database, Shard));
        await new AgentRunner(new RecordsProjector(table: RecordStore.Next), Shard, registry, new NoAgentFaults()).CatchUpAsync();
        await RestampAsync(database, insert.MessageId, 3);

        Assert.Equal(2L, await RecordsRebuild.TrySwapAsync(database, Shard, 0));
        Assert.Equal(new LamportStamp(3, Shard), (await RecordStore.ReadAsync(database, "acct/c")).FirstStamp);
        await new AgentRunner(new RecordsProjector(), Shard, registry, new NoAgentFaults()).CatchUpAsync();
        var record = await RecordStore.ReadAsync(database, "acct/c");
        Assert.Equal((new LamportStamp(3, Shard), new LamportStamp(7, Shard), 2L), (record.FirstStamp, record.LastStamp, record.Version));
    }

    private async Task<(NpgsqlDataSource Database, ShardRegistry Registry)> DatabaseAsync(string prefix)
    {
        var topology = postgres.CreateTopology(prefix, 0, Shard);
        await Migrations.MigrateAsync(topology.Settings);
        return (topology.Database(Shard), Migrations.Registry(topology.Settings));
    }

    private static async Task<JournalEntry> AppendAsync(NpgsqlDataSource database, long position, string actorId, MessageKind kind, long counter, long version)
    {
        var entry = new JournalEntry(position, Guid.NewGuid(), new LamportStamp(counter, Shard), Guid.NewGuid(), position,
            new ActorRef(Shard, actorId), kind, version, $$"""{"n": {{counter}}}""", "test", null, DateTimeOffset.UtcNow);
        await using var command = database.CreateCommand("""
            insert into pr2_journal (position, message_id, lamport_counter, lamport_shard, origin_replica, origin_position,
                                     actor_id, kind, actor_version, body, content_hash, sender)
            values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, 'test')
            """);
        foreach (var value in new object[]
        {
            position, entry.MessageId, counter, Shard, entry.OriginReplica, position, actorId, (short)kind, version, entry.Body,
            MessageBody.ContentHash(entry.Actor, kind, entry.Body),
        })
        {
            command.Parameters.Add(new NpgsqlParameter { Value = value });
        }

        await command.ExecuteNonQueryAsync();
        await using var head = database.CreateCommand("update pr2_writer_head set position = $1, clock = greatest(clock, $2)");
        head.Parameters.Add(new NpgsqlParameter { Value = position });
        head.Parameters.Add(new NpgsqlParameter { Value = counter });
        await head.ExecuteNonQueryAsync();
        return entry;
    }

    private static async Task RestampAsync(NpgsqlDataSource database, Guid messageId, long counter)
    {
        await using var command = database.CreateCommand("insert into pr2_restamp (message_id, lamport_counter, lamport_shard) values ($1, $2, $3)");
        command.Parameters.Add(new NpgsqlParameter { Value = messageId });
        command.Parameters.Add(new NpgsqlParameter { Value = counter });
        command.Parameters.Add(new NpgsqlParameter { Value = Shard });
        await command.ExecuteNonQueryAsync();
    }
}
