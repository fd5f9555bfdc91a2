using CsCheck;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using PR2.Grains.Agents;
using PR2.Grains.Records;
using PR2.Grains.Storage;
using PR2.Grains.Writing;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// Agents take the entries a writer on their silo just committed from memory (<see cref="RecentEntries"/>) instead of
/// reading them back. What they write from there must be exactly what they write from the journal, and memory must
/// never stand in for the journal where it does not hold the very next entries.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class RecentEntriesTests(PostgresFixture postgres)
{
    private const int Shard = 1;

    [Fact]
    public async Task Records_and_directory_fed_from_memory_are_the_ones_folded_from_the_journal()
    {
        var topology = postgres.CreateTopology("recent", 0, Shard);
        await Migrations.MigrateAsync(topology.Settings);
        await using var registry = Migrations.Registry(topology.Settings);
        // The writer and the agents must share the data source objects, as in a silo: memory is kept per data source.
        var database = registry.Get(Shard).Primary;
        var control = registry.Get(0).Primary;
        var recent = new RecentEntries();
        var merges = new RecentMerges();
        await using var writer = await JournalWriter.OpenAsync(Shard, database, 100, NullLogger.Instance, recent: recent);
        var records = new AgentRunner(new RecordsProjector(merges), Shard, registry, new NoAgentFaults(), recent: recent);
        var directory = new AgentRunner(new ObjectDirectoryProjector(), Shard, registry, new NoAgentFaults(), recent: recent);

        var run = 0;
        var mergedAhead = 0;
        await Gen.Select(RandomBodies.Ops.Array[1, 40], Gen.Int[1, 8]).SampleAsync(async (ops, groupSize) =>
        {
            var prefix = $"r{Interlocked.Increment(ref run)}";
            var held = new Dictionary<int, RecordState>();
            foreach (var group in ops.Chunk(groupSize))
            {
                await Task.WhenAll(group.Select(op =>
                {
                    // As the actor does: its record's next state worked out before the append, merges kept for the agent.
                    var record = held.GetValueOrDefault(op.Actor) ?? RecordState.Missing;
                    var request = Appends.Request(new ActorRef(Shard, $"{prefix}/{op.Actor}"), op.Kind, record.Version + 1, op.Body);
                    mergedAhead += record.Status == RecordStatus.Live && op.Kind == MessageKind.Modify ? 1 : 0;
                    held[op.Actor] = record.Accept(record.Propose(op.Kind, request.CanonicalBody, merges), default, 0);
                    return writer.AppendAsync(request);
                }));
                await records.CatchUpAsync();
                await directory.CatchUpAsync();
            }
        }, iter: 20, threads: 1);

        var head = await HeadAsync(database);
        Assert.Equal(head, recent.Taken / 2); // every entry, once by each agent
        Assert.True(mergedAhead > 0);
        Assert.Equal(mergedAhead, merges.Taken); // every merge the "actors" worked out, none worked out again
        var fromMemory = (await RecordsAsync(database), await DirectoryAsync(control));

        // The same agents with nothing in memory, from the start of the journal: the same rows, byte for byte.
        await database.CreateCommand("delete from pr2_record; delete from pr2_agent_mark").ExecuteNonQueryAsync();
        await control.CreateCommand("delete from pr2_object_directory; delete from pr2_agent_mark").ExecuteNonQueryAsync();
        await new AgentRunner(new RecordsProjector(), Shard, registry, new NoAgentFaults()).CatchUpAsync();
        await new AgentRunner(new ObjectDirectoryProjector(), Shard, registry, new NoAgentFaults()).CatchUpAsync();
        Assert.Equal(fromMemory.Item1, await RecordsAsync(database));
        Assert.Equal(fromMemory.Item2, await DirectoryAsync(control));
        Assert.NotEmpty(fromMemory.Item1);
        Assert.Equal(head, recent.Taken / 2);
    }

    [Fact]
    public async Task Memory_answers_only_for_the_next_entries_it_holds_and_forgets_on_a_gap_or_a_new_writer()
    {
        await using var journal = NpgsqlDataSource.Create("Host=127.0.0.1");
        await using var other = NpgsqlDataSource.Create("Host=127.0.0.2");
        var recent = new RecentEntries();
        recent.Committed(journal, Entries(11, 13));
        recent.Committed(journal, Entries(14, 20));

        Assert.Null(recent.TryRead(other, 10, 100));
        Assert.Null(recent.TryRead(journal, 9, 100)); // entry 10 is not held: the journal has it
        Assert.Null(recent.TryRead(journal, 20, 100)); // nothing after 20 yet
        Assert.Equal([11L, 12, 13], recent.TryRead(journal, 10, 3)!.Select(e => e.Position));
        // A read cut inside a commit goes on to its end (an atomic batch is folded whole), but not past the bound.
        Assert.Equal([11L, 12, 13], recent.TryRead(journal, 10, 1)!.Select(e => e.Position));
        Assert.Equal([11L, 12, 13, 14, 15, 16, 17, 18, 19, 20], recent.TryRead(journal, 10, 4)!.Select(e => e.Position));
        Assert.Equal([11L, 12], recent.TryRead(journal, 10, 1, bound: 12)!.Select(e => e.Position));
        Assert.Equal([19L, 20], recent.TryRead(journal, 18, 100)!.Select(e => e.Position));

        // Entries that do not follow on (anti-entropy wrote 21..30 in between) start the run again.
        recent.Committed(journal, Entries(31, 35));
        Assert.Null(recent.TryRead(journal, 20, 100));
        Assert.Equal([31L, 32, 33, 34, 35], recent.TryRead(journal, 30, 100)!.Select(e => e.Position));

        // At most twice the capacity is held, and at least the capacity: the newest.
        recent.Committed(journal, Entries(36, 35 + 2 * RecentEntries.Capacity));
        var last = 35 + 2 * RecentEntries.Capacity;
        Assert.Null(recent.TryRead(journal, last - RecentEntries.Capacity - 1, 1));
        Assert.Equal(last - RecentEntries.Capacity + 1, recent.TryRead(journal, last - RecentEntries.Capacity, 1)!.First().Position);

        recent.Forget(journal);
        Assert.Null(recent.TryRead(journal, last - 1, 1));
    }

    [Fact]
    public async Task A_writer_that_opens_forgets_what_an_earlier_writer_on_the_journal_left()
    {
        var topology = postgres.CreateTopology("recent_reopen", 0, Shard);
        await Migrations.MigrateAsync(topology.Settings);
        var database = topology.Database(Shard);
        var recent = new RecentEntries();
        await using (var first = await JournalWriter.OpenAsync(Shard, database, 100, NullLogger.Instance, recent: recent))
        {
            await first.AppendAsync(Appends.Request(new ActorRef(Shard, "item/1"), MessageKind.Insert, 1, "{}"));
            Assert.NotNull(recent.TryRead(database, 0, 10));
        }

        await using var second = await JournalWriter.OpenAsync(Shard, database, 100, NullLogger.Instance, recent: recent);
        Assert.Null(recent.TryRead(database, 0, 10));
        await second.AppendAsync(Appends.Request(new ActorRef(Shard, "item/1"), MessageKind.Modify, 2, """{"n": 2}"""));
        Assert.Null(recent.TryRead(database, 0, 10));
        Assert.Equal(2, recent.TryRead(database, 1, 10)!.Single().Version);
    }

    private static List<JournalEntry> Entries(long from, long to) =>
        [.. Enumerable.Range((int)from, (int)(to - from + 1)).Select(position => new JournalEntry(position, Guid.NewGuid(), new LamportStamp(position, Shard),
            Guid.Empty, position, new ActorRef(Shard, "item/1"), MessageKind.Modify, position, "{}", "test", null, DateTimeOffset.UtcNow))];

    private static async Task<long> HeadAsync(NpgsqlDataSource database) =>
        (long)(await database.CreateCommand("select position from pr2_writer_head").ExecuteScalarAsync())!;

    // Every stored record, as PostgreSQL prints it (state as jsonb text), in actor order.
    private static async Task<List<string>> RecordsAsync(NpgsqlDataSource database) =>
        await RowsAsync(database, """
            select concat_ws('|', actor_id, actor_type, status, version, state::text, first_counter, first_shard, last_counter, last_shard, last_position)
            from pr2_record order by actor_id
            """);

    private static async Task<List<string>> DirectoryAsync(NpgsqlDataSource control) =>
        await RowsAsync(control, "select concat_ws('|', shard, actor_id, actor_type, status, first_position) from pr2_object_directory order by shard, actor_id");

    private static async Task<List<string>> RowsAsync(NpgsqlDataSource database, string sql)
    {
        var rows = new List<string>();
        await using var command = database.CreateCommand(sql);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            rows.Add(reader.GetString(0));
        }

        return rows;
    }
}
