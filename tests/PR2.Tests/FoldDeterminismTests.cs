using CsCheck;
using Npgsql;
using PR2.Grains.Agents;
using PR2.Grains.Json;
using PR2.Grains.Records;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// The fold is deterministic: the same set of entries, arriving in any order and applied by the records
/// agent in any batch sizes, gives byte-equal records, equal to the fold in Lamport order. Entries are
/// written straight into the journal here, as a replica importing other origins' entries will.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class FoldDeterminismTests(PostgresFixture postgres)
{
    private const int Shard = 1;

    private static readonly Gen<Op> OpGen = RandomBodies.Ops.Select(op => new Op(op.Actor, op.Kind, op.Body));

    [Fact]
    public async Task Any_arrival_order_and_batching_of_the_same_entries_folds_to_the_same_records()
    {
        var topology = postgres.CreateTopology("fold", 0, Shard);
        await Migrations.MigrateAsync(topology.Settings);
        await using var registry = Migrations.Registry(topology.Settings);
        var database = topology.Database(Shard);
        var run = 0;

        await Gen.Select(OpGen.Array[1, 24], Gen.Int, Gen.Int).SampleAsync(async (ops, seedA, seedB) =>
        {
            var scenario = $"s{Interlocked.Increment(ref run)}";
            var entries = Stamp(ops, new Random(seedA ^ seedB));
            var a = await ApplyInArrivalOrderAsync(database, registry, entries, $"{scenario}a", new Random(seedA));
            var b = await ApplyInArrivalOrderAsync(database, registry, entries, $"{scenario}b", new Random(seedB));

            foreach (var actor in entries.Select(e => e.Actor).Distinct())
            {
                var expected = RecordState.Fold(entries.Where(e => e.Actor == actor).OrderBy(e => e.Stamp).ThenBy(e => e.MessageId));
                var (recordA, stateA) = a[actor];
                var (recordB, stateB) = b[actor];
                Assert.Equal((expected.Status, expected.Version, expected.FirstStamp, expected.LastStamp),
                    (recordA.Status, recordA.Version, recordA.FirstStamp, recordA.LastStamp));
                Assert.Equal((recordA.Status, recordA.Version, recordA.FirstStamp, recordA.LastStamp),
                    (recordB.Status, recordB.Version, recordB.FirstStamp, recordB.LastStamp));
                Assert.Equal(stateA, stateB);
                Assert.True(SameJson.As(expected.State, stateA), $"{actor}: {stateA} is not the Lamport-order fold");
            }
        }, iter: 30, threads: 1);
    }

    private sealed record Op(int Actor, MessageKind Kind, string Body);

    // Unique Lamport stamps in a random order relative to the op list, from two origin shards.
    private static List<JournalEntry> Stamp(Op[] ops, Random random)
    {
        var counters = Enumerable.Range(1, ops.Length).OrderBy(_ => random.Next()).ToArray();
        return [.. ops.Select((op, i) => new JournalEntry(
            0, Guid.NewGuid(), new LamportStamp(counters[i], 1 + (i % 2)), Guid.Empty, 0,
            new ActorRef(Shard, $"prop/{op.Actor}"), op.Kind, 0, op.Body, "property-test", null, default))];
    }

    // Appends the entries in a random order under actor ids unique to this arrival, then lets the records
    // agent catch up in random batch sizes. Returns each original actor's stored record and its state text.
    private static async Task<Dictionary<ActorRef, (RecordState Record, string? State)>> ApplyInArrivalOrderAsync(
        NpgsqlDataSource database, PR2.Grains.Storage.ShardRegistry registry, List<JournalEntry> entries, string suffix, Random random)
    {
        var arrival = entries.OrderBy(_ => random.Next()).ToList();
        var versions = new Dictionary<ActorRef, long>();
        await using (var connection = await database.OpenConnectionAsync())
        {
            var position = (long)(await new NpgsqlCommand("select coalesce(max(position), 0) from pr2_journal", connection).ExecuteScalarAsync())!;
            foreach (var entry in arrival)
            {
                versions[entry.Actor] = versions.GetValueOrDefault(entry.Actor) + 1;
                position++;
                await using var insert = new NpgsqlCommand("""
                    insert into pr2_journal (position, message_id, lamport_counter, lamport_shard, origin_replica, origin_position,
                                             actor_id, kind, actor_version, body, content_hash, sender)
                    values ($1, $2, $3, $4, $5, $1, $6, $7, $8, $9::jsonb, $10, 'property-test')
                    """, connection);
                foreach (var value in new object[]
                {
                    position, Guid.NewGuid(), entry.Stamp.Counter, entry.Stamp.Shard, Guid.NewGuid(),
                    $"{entry.Actor.ActorId}{suffix}", (short)entry.Kind, versions[entry.Actor], entry.Body,
                    MessageBody.ContentHash(entry.Actor, entry.Kind, entry.Body),
                })
                {
                    insert.Parameters.Add(new NpgsqlParameter { Value = value });
                }

                await insert.ExecuteNonQueryAsync();
            }
        }

        // Several runners with different batch sizes take turns: batch boundaries fall anywhere.
        var runners = Enumerable.Range(1, 3)
            .Select(_ => new AgentRunner(new RecordsProjector(), Shard, registry, new NoAgentFaults(), batchSize: random.Next(1, 6)))
            .ToList();
        var idle = 0;
        while (idle < runners.Count)
        {
            idle = await runners[random.Next(runners.Count)].RunOnceAsync() == 0 ? idle + 1 : 0;
        }

        var result = new Dictionary<ActorRef, (RecordState, string?)>();
        foreach (var actor in entries.Select(e => e.Actor).Distinct())
        {
            var stored = await PR2.Grains.Records.RecordStore.ReadAsync(database, actor.ActorId + suffix);
            await using var state = database.CreateCommand("select state::text from pr2_record where actor_id = $1");
            state.Parameters.Add(new NpgsqlParameter { Value = actor.ActorId + suffix });
            result[actor] = (stored, await state.ExecuteScalarAsync() as string);
        }

        return result;
    }
}
