using CsCheck;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using PR2.Client;
using PR2.Grains.Agents;
using PR2.Grains.Json;
using PR2.Grains.Records;
using PR2.Grains.Storage;
using PR2.Grains.Writing;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// The journal writer folds a commit's entries into the records view itself when the records agent stands at the
/// head. Its records must be exactly what the agent would have written; it waits for an agent batch that is about
/// to reach the head, and otherwise steps aside (leaving the entries to the agent) when the agent is further
/// behind or has a refold pending.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class InlineProjectionTests(PostgresFixture postgres)
{
    private const int Shard = 1;

    [Fact]
    public async Task Records_projected_by_the_writer_are_the_ones_the_agent_folds()
    {
        var topology = postgres.CreateTopology("inline", 0, Shard);
        await Migrations.MigrateAsync(topology.Settings);
        await using var registry = Migrations.Registry(topology.Settings);
        var database = topology.Database(Shard);
        var projected = new List<bool>();
        await using var writer = await JournalWriter.OpenAsync(Shard, database, 100, NullLogger.Instance,
            committed: (_, records) => projected.Add(records), projectRecords: true);
        var agent = new AgentRunner(new RecordsProjector(), Shard, registry, new NoAgentFaults());

        // The agent has not run yet, so it has no mark: the first commit is left to it.
        await writer.AppendAsync(Appends.Request(new ActorRef(Shard, "warm/up"), MessageKind.Insert, 1, "{}"));
        Assert.Equal([false], projected);
        await agent.CatchUpAsync();

        var run = 0;
        await Gen.Select(RandomBodies.Ops.Array[1, 30], Gen.Int[1, 8]).SampleAsync(async (ops, groupSize) =>
        {
            var prefix = $"r{Interlocked.Increment(ref run)}";
            var start = await HeadAsync(database);
            var versions = new Dictionary<int, long>();
            foreach (var group in ops.Chunk(groupSize))
            {
                // One group commit: the appends are queued together, several to the same actor, in version order.
                var appends = group.Select(op =>
                {
                    versions[op.Actor] = versions.GetValueOrDefault(op.Actor) + 1;
                    return writer.AppendAsync(Appends.Request(new ActorRef(Shard, $"{prefix}/{op.Actor}"), op.Kind, versions[op.Actor], op.Body));
                }).ToList();
                await Task.WhenAll(appends);
                Assert.Equal(await HeadAsync(database), await AgentMarks.ReadAsync(database, RecordsProjector.AgentName, Shard));
            }

            Assert.All(projected.Skip(1), Assert.True);
            var actorIds = versions.Keys.Select(a => $"{prefix}/{a}").ToList();
            var inline = await StoredAsync(database, actorIds);
            foreach (var actorId in actorIds)
            {
                var expected = RecordState.Fold(await JournalStore.ReadActorAsync(database, new ActorRef(Shard, actorId)));
                var (stored, _) = inline[actorId];
                Assert.Equal((expected.Status, expected.Version, expected.FirstStamp, expected.LastStamp, expected.LastPosition),
                    (stored.Status, stored.Version, stored.FirstStamp, stored.LastStamp, stored.LastPosition));
                Assert.True(SameJson.As(expected.State, stored.State), $"{actorId}: state differs from the fold of its journal");
            }

            // The agent, made to fold these actors again from the journal, writes byte-equal records.
            await ForgetAsync(database, actorIds, start);
            await agent.CatchUpAsync();
            var folded = await StoredAsync(database, actorIds);
            foreach (var actorId in actorIds)
            {
                Assert.Equal(inline[actorId].Record with { State = null }, folded[actorId].Record with { State = null });
                Assert.Equal(inline[actorId].State, folded[actorId].State);
            }
        }, iter: 25, threads: 1);
    }

    [Fact]
    public async Task The_writer_waits_for_an_agent_batch_near_the_head_and_leaves_the_rest_to_the_agent()
    {
        var topology = postgres.CreateTopology("inline_aside", 0, Shard);
        await Migrations.MigrateAsync(topology.Settings);
        await using var registry = Migrations.Registry(topology.Settings);
        var database = topology.Database(Shard);
        var projected = new List<bool>();
        await using var writer = await JournalWriter.OpenAsync(Shard, database, 1000, NullLogger.Instance,
            committed: (_, records) => projected.Add(records), projectRecords: true);
        var agent = new AgentRunner(new RecordsProjector(), Shard, registry, new NoAgentFaults());
        var actor = new ActorRef(Shard, "item/1");
        var version = 0L;
        Task<WriteAck> Next() => writer.AppendAsync(Appends.Request(actor, version++ == 0 ? MessageKind.Insert : MessageKind.Modify, version, $$"""{"v{{version}}": {{version}}}"""));

        var first = await Next();
        await agent.CatchUpAsync();
        await Next();
        Assert.Equal((2L, 2L, true), (await HeadAsync(database), await MarkAsync(database), projected[^1]));

        // An agent batch holds the mark at the head: the commit waits for it, then projects its entry itself.
        await using (var connection = await database.OpenConnectionAsync())
        await using (var agentBatch = await connection.BeginTransactionAsync())
        {
            await LockMarkAsync(connection, agentBatch);
            var waiting = Next();
            await Eventually.TrueAsync(async () => await WaitingOnLocksAsync(database) > 0, TimeSpan.FromSeconds(10), "the commit waits for the mark");
            await agentBatch.RollbackAsync();
            await waiting.WaitAsync(TimeSpan.FromSeconds(10));
        }

        Assert.Equal((3L, 3L, true), (await HeadAsync(database), await MarkAsync(database), projected[^1]));

        // A refold pending (anti-entropy lowered a stamp; here to the same stamp): the record is about to be folded
        // again, so nothing goes on top of it. Many entries arrive meanwhile: the agent falls more than a batch behind.
        await database.CreateCommand($"insert into pr2_restamp (message_id, lamport_counter, lamport_shard) values ('{first.MessageId}', {first.Stamp.Counter}, {first.Stamp.Shard})").ExecuteNonQueryAsync();
        await Next();
        Assert.Equal((4L, 3L, false), (await HeadAsync(database), await MarkAsync(database), projected[^1]));
        await Task.WhenAll(Enumerable.Range(0, AgentRunner.DefaultBatchSize + 5).Select(i =>
            writer.AppendAsync(Appends.Request(new ActorRef(Shard, $"bulk/{i}"), MessageKind.Insert, 1, "{}"))));
        Assert.Equal(3L, await MarkAsync(database));
        await database.CreateCommand("update pr2_restamp set refolded = true").ExecuteNonQueryAsync();

        // More than a batch behind, the agent busy: the commit does not wait; the entry is the agent's.
        await using (var connection = await database.OpenConnectionAsync())
        await using (var agentBatch = await connection.BeginTransactionAsync())
        {
            await LockMarkAsync(connection, agentBatch);
            await Next().WaitAsync(TimeSpan.FromSeconds(10));
        }

        Assert.False(projected[^1]);
        Assert.Equal(3L, await MarkAsync(database));
        await agent.CatchUpAsync();
        await Next();
        var head = await HeadAsync(database);
        Assert.Equal((head, true), (await MarkAsync(database), projected[^1]));

        var expected = RecordState.Fold(await JournalStore.ReadActorAsync(database, actor));
        var stored = await RecordStore.ReadAsync(database, actor.ActorId);
        Assert.Equal((expected.Status, expected.Version, expected.LastStamp), (stored.Status, stored.Version, stored.LastStamp));
        Assert.True(SameJson.As(expected.State, stored.State));
    }

    [Fact]
    public async Task With_the_option_on_a_silo_acknowledges_writes_whose_records_are_already_there()
    {
        var topology = postgres.CreateTopology("inline_silo", 0, Shard);
        topology.Settings["Pr2:Write:ProjectRecordsInline"] = "true";
        await using var cluster = await TestClusters.StartAsync(topology.Settings);
        var client = new Pr2Client(cluster.Client);
        var database = topology.Database(Shard);

        // The records agent makes its mark on its first batch; from then on each commit projects its own entries.
        await client.SendAsync(Shard, "warm/up", MessageKind.Insert, "{}");
        await Eventually.TrueAsync(async () => await MarkAsync(database) == await HeadAsync(database), TimeSpan.FromSeconds(30), "records agent at the head");

        // Through the agent, a record shows up tens of milliseconds after the ack: twenty in a row already there
        // on return would not happen by chance.
        for (var version = 1; version <= 20; version++)
        {
            var ack = await client.SendAsync(Shard, "item/1", version == 1 ? MessageKind.Insert : MessageKind.Modify, $$"""{"n": {{version}}}""");
            var stored = await RecordStore.ReadAsync(database, "item/1");
            Assert.Equal((ack.Version, ack.Position), (stored.Version, stored.LastPosition));
        }
    }

    private static async Task LockMarkAsync(NpgsqlConnection connection, NpgsqlTransaction transaction)
    {
        await using var command = new NpgsqlCommand("select position from pr2_agent_mark where agent = 'records' for update", connection, transaction);
        await command.ExecuteScalarAsync();
    }

    private static async Task<long> WaitingOnLocksAsync(NpgsqlDataSource database) =>
        (long)(await database.CreateCommand("select count(*) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'").ExecuteScalarAsync())!;

    private static async Task<long> HeadAsync(NpgsqlDataSource database) =>
        (long)(await database.CreateCommand("select position from pr2_writer_head").ExecuteScalarAsync())!;

    private static Task<long> MarkAsync(NpgsqlDataSource database) => AgentMarks.ReadAsync(database, RecordsProjector.AgentName, Shard);

    // Each actor's stored record and its state as PostgreSQL prints it.
    private static async Task<Dictionary<string, (RecordState Record, string? State)>> StoredAsync(NpgsqlDataSource database, List<string> actorIds)
    {
        var stored = new Dictionary<string, (RecordState, string?)>();
        foreach (var actorId in actorIds)
        {
            await using var state = database.CreateCommand("select state::text from pr2_record where actor_id = $1");
            state.Parameters.Add(new NpgsqlParameter { Value = actorId });
            stored[actorId] = (await RecordStore.ReadAsync(database, actorId), await state.ExecuteScalarAsync() as string);
        }

        return stored;
    }

    // Drops the actors' records and moves the records agent's mark back to where they began, so that it folds them again.
    private static async Task ForgetAsync(NpgsqlDataSource database, List<string> actorIds, long mark)
    {
        await using var delete = database.CreateCommand("delete from pr2_record where actor_id = any($1)");
        delete.Parameters.Add(new NpgsqlParameter { Value = actorIds.ToArray() });
        await delete.ExecuteNonQueryAsync();
        await using var rewind = database.CreateCommand("update pr2_agent_mark set position = $1 where agent = 'records'");
        rewind.Parameters.Add(new NpgsqlParameter { Value = mark });
        await rewind.ExecuteNonQueryAsync();
    }
}
