using System.Text.Json.Nodes;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// Atomic batches (<see cref="Client.IPr2Session.SendBatchAsync"/>): all or nothing, judged in batch order as if sent one by
/// one, one acknowledgement, idempotent as a whole, and consistent with the actors' own write path.
/// </summary>
[Collection(SharedClusterCollection.Name)]
public sealed class AtomicBatchTests(SharedClusterFixture fixture)
{
    private const int Shard = 2;
    private readonly TestTopology _db = fixture.Topology;

    private static Message Msg(string actor, MessageKind kind, string body = "{}", long? expectedVersion = null, Guid? id = null) =>
        new(id ?? MessageIds.New(), "batch-test", ActorRef.Create(Shard, actor), kind, body, expectedVersion);

    [Fact]
    public async Task A_batch_is_written_in_order_at_contiguous_positions_with_the_versions_of_one_by_one_sends()
    {
        var (a, b, c) = (SharedClusterFixture.NewActorId(), SharedClusterFixture.NewActorId(), SharedClusterFixture.NewActorId());
        await fixture.Client.SendAsync(Shard, c, MessageKind.Insert, """{"n": 0}""");
        Message[] batch =
        [
            Msg(a, MessageKind.Insert, """{"n": 1, "tags": [1]}"""),
            Msg(b, MessageKind.Insert, """{"n": 10}"""),
            Msg(a, MessageKind.Modify, """{"n": 2}""", expectedVersion: 1),
            Msg(c, MessageKind.Modify, """{"m": 5}""", expectedVersion: 1),
            Msg(b, MessageKind.Cancel),
            Msg(a, MessageKind.Modify, """{"tags": null, "done": true}"""),
        ];

        var ack = await fixture.Client.SendBatchAsync(Shard, batch);

        Assert.False(ack.Duplicate);
        Assert.Equal(batch.Select(m => m.MessageId), ack.Acks.Select(x => x.MessageId));
        Assert.Equal(Enumerable.Range(0, batch.Length).Select(i => ack.Acks[0].Position + i), ack.Acks.Select(x => x.Position));
        Assert.Equal([1L, 1, 2, 2, 2, 3], ack.Acks.Select(x => x.Version));
        Assert.True(ack.Acks.Zip(ack.Acks.Skip(1)).All(p => p.First.Stamp < p.Second.Stamp));
        Assert.Equal(batch.Select(m => m.Receiver), ack.Acks.Select(x => x.Actor));

        // The actors agree (their grains fold the journal), and the records view holds the same.
        var recordA = await fixture.Client.GetRecordAsync(Shard, a);
        Assert.Equal((RecordStatus.Live, 3L), (recordA.Status, recordA.Version));
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"n": 2, "done": true}"""), JsonNode.Parse(recordA.State!)));
        Assert.Equal(RecordStatus.Canceled, (await fixture.Client.GetRecordAsync(Shard, b)).Status);
        var readC = await fixture.Client.ReadRecordAsync(Shard, c);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"n": 0, "m": 5}"""), JsonNode.Parse(readC.Record.State!)));
        Assert.Equal(2, readC.Record.Version);
    }

    [Fact]
    public async Task One_refusal_refuses_the_whole_batch_with_every_reason_and_writes_nothing()
    {
        var (live, canceled, fresh) = (SharedClusterFixture.NewActorId(), SharedClusterFixture.NewActorId(), SharedClusterFixture.NewActorId());
        await fixture.Client.SendAsync(Shard, live, MessageKind.Insert, """{"n": 1}""");
        await fixture.Client.SendAsync(Shard, canceled, MessageKind.Insert, """{"n": 1}""");
        await fixture.Client.SendAsync(Shard, canceled, MessageKind.Cancel, null);
        Message[] batch =
        [
            Msg(fresh, MessageKind.Insert, """{"n": 1}"""),
            Msg(live, MessageKind.Modify, """{"n": 2}"""),
            Msg(live, MessageKind.Insert, """{"n": 3}"""),
            Msg(canceled, MessageKind.Modify, """{"n": 2}"""),
            Msg(SharedClusterFixture.NewActorId(), MessageKind.Modify, """{"n": 2}"""),
            Msg(live, MessageKind.Modify, """{"n": 4}""", expectedVersion: 1),
            Msg(fresh, MessageKind.Modify, """{"n": 2}""", expectedVersion: 1),
        ];

        var refused = await Assert.ThrowsAsync<Pr2Exception>(() => fixture.Client.SendBatchAsync(Shard, batch));

        Assert.Equal(ErrorCode.BatchRefused, refused.Code);
        Assert.Equal(
            [(2, ErrorCode.RecordExists), (3, ErrorCode.RecordCanceled), (4, ErrorCode.RecordMissing), (5, ErrorCode.VersionMismatch)],
            refused.Refusals.Select(r => (r.Index, r.Code)));
        Assert.All(refused.Refusals, r => Assert.Equal(batch[r.Index].MessageId, r.MessageId));
        Assert.Contains("is at version 2, the message expected version 1", refused.Refusals[3].Reason);
        Assert.Equal(0, await CountWrittenAsync(batch));
        Assert.Equal(1, (await fixture.Client.GetRecordAsync(Shard, live)).Version);
        Assert.Equal(RecordStatus.Missing, (await fixture.Client.GetRecordAsync(Shard, fresh)).Status);
    }

    [Fact]
    public async Task Messages_are_judged_in_batch_order()
    {
        var actor = SharedClusterFixture.NewActorId();
        var modifyFirst = await Assert.ThrowsAsync<Pr2Exception>(() => fixture.Client.SendBatchAsync(Shard,
            [Msg(actor, MessageKind.Modify, """{"n": 2}"""), Msg(actor, MessageKind.Insert, """{"n": 1}""")]));
        Assert.Equal((0, ErrorCode.RecordMissing), (modifyFirst.Refusals.Single().Index, modifyFirst.Refusals.Single().Code));

        var afterCancel = await Assert.ThrowsAsync<Pr2Exception>(() => fixture.Client.SendBatchAsync(Shard,
            [Msg(actor, MessageKind.Insert, """{"n": 1}"""), Msg(actor, MessageKind.Cancel), Msg(actor, MessageKind.Modify, """{"n": 2}""")]));
        Assert.Equal((2, ErrorCode.RecordCanceled), (afterCancel.Refusals.Single().Index, afterCancel.Refusals.Single().Code));
        Assert.Equal(RecordStatus.Missing, (await fixture.Client.GetRecordAsync(Shard, actor)).Status);
    }

    [Fact]
    public async Task A_batch_sent_again_gets_its_first_acknowledgement_and_other_content_is_refused()
    {
        var (a, b) = (SharedClusterFixture.NewActorId(), SharedClusterFixture.NewActorId());
        Message[] batch = [Msg(a, MessageKind.Insert, """{"n": 1}"""), Msg(b, MessageKind.Insert, """{"n": 1}"""), Msg(a, MessageKind.Modify, """{"n": 2}""")];
        var first = await fixture.Client.SendBatchAsync(Shard, batch);

        var again = await fixture.Client.SendBatchAsync(Shard, batch);
        Assert.True(again.Duplicate);
        Assert.Equal(first.Acks.Select(x => (x.MessageId, x.Position, x.Stamp, x.Version)), again.Acks.Select(x => (x.MessageId, x.Position, x.Stamp, x.Version)));

        // The same MessageId with another body; and the batch's messages mixed with a new one.
        var changed = await Assert.ThrowsAsync<Pr2Exception>(() => fixture.Client.SendBatchAsync(Shard,
            [batch[0], batch[1] with { Body = """{"n": 99}""" }, batch[2]]));
        Assert.Equal((1, ErrorCode.IdempotencyConflict), (changed.Refusals.Single().Index, changed.Refusals.Single().Code));
        var extra = Msg(b, MessageKind.Modify, """{"n": 2}""");
        var mixed = await Assert.ThrowsAsync<Pr2Exception>(() => fixture.Client.SendBatchAsync(Shard, [batch[0], extra]));
        Assert.Equal(ErrorCode.BatchRefused, mixed.Code);
        Assert.Equal((0, ErrorCode.IdempotencyConflict), (mixed.Refusals.Single().Index, mixed.Refusals.Single().Code));

        // The same messages in another order, or only some of them, are not the batch written before.
        var reordered = await Assert.ThrowsAsync<Pr2Exception>(() => fixture.Client.SendBatchAsync(Shard, [batch[1], batch[0], batch[2]]));
        Assert.All(reordered.Refusals, r => Assert.Equal(ErrorCode.IdempotencyConflict, r.Code));
        var part = await Assert.ThrowsAsync<Pr2Exception>(() => fixture.Client.SendBatchAsync(Shard, [batch[0], batch[2]]));
        Assert.Equal(ErrorCode.BatchRefused, part.Code);

        Assert.Equal(3, await CountWrittenAsync([.. batch, extra]));
        Assert.Equal(1, (await fixture.Client.GetRecordAsync(Shard, b)).Version);
    }

    [Fact]
    public async Task A_batch_whose_commit_waits_longer_than_a_second_still_gets_its_final_answer()
    {
        // The head's lock held for longer than a local append waits before it is handed to the writer grain: the answer
        // must still be the refusal (nothing was written), not "outcome unknown".
        var actor = SharedClusterFixture.NewActorId();
        Message[] batch = [Msg(SharedClusterFixture.NewActorId(), MessageKind.Insert), Msg(actor, MessageKind.Modify, """{"n": 1}""")];
        Task<BatchAck> sending;
        await using (var hold = await HeadLock.TakeAsync(_db.Database(Shard)))
        {
            sending = fixture.Client.SendBatchAsync(Shard, batch);
            await hold.WaitForWaiterAsync();
            await Task.Delay(TimeSpan.FromSeconds(1.5)); // the fault's length: past the local writer's one-second wait
            await hold.ReleaseAsync();
        }

        var refused = await Assert.ThrowsAsync<Pr2Exception>(() => sending);
        Assert.Equal((ErrorCode.BatchRefused, 1, ErrorCode.RecordMissing), (refused.Code, refused.Refusals.Single().Index, refused.Refusals.Single().Code));
        Assert.Equal(0, await CountWrittenAsync(batch));
    }

    [Fact]
    public async Task An_actor_that_holds_its_record_sees_what_a_batch_wrote()
    {
        var actor = SharedClusterFixture.NewActorId();
        await fixture.Client.SendAsync(Shard, actor, MessageKind.Insert, """{"n": 1}""");
        Assert.Equal(1, (await fixture.Client.GetRecordAsync(Shard, actor)).Version); // the actor holds version 1 now

        await fixture.Client.SendBatchAsync(Shard, [Msg(actor, MessageKind.Modify, """{"b": 1}"""), Msg(actor, MessageKind.Modify, """{"b": 2}""")]);
        Assert.Equal(3, (await fixture.Client.GetRecordAsync(Shard, actor)).Version); // not the version 1 it held
        var after = await fixture.Client.SendAsync(Shard, actor, MessageKind.Modify, """{"c": 1}""");
        var expected = await fixture.Client.SendAsync(Shard, actor, MessageKind.Modify, """{"d": 1}""", expectedVersion: 4);

        Assert.Equal((4L, 5L), (after.Version, expected.Version));
        var record = await fixture.Client.GetRecordAsync(Shard, actor);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"n": 1, "b": 2, "c": 1, "d": 1}"""), JsonNode.Parse(record.State!)));
        var refused = await Assert.ThrowsAsync<Pr2Exception>(() => fixture.Client.SendAsync(Shard, actor, MessageKind.Insert, "{}"));
        Assert.Equal(ErrorCode.RecordExists, refused.Code);
    }

    [Fact]
    public async Task Bad_messages_are_each_named_and_limits_refuse_the_batch()
    {
        var actor = SharedClusterFixture.NewActorId();
        var id = MessageIds.New();
        Message[] batch =
        [
            Msg(actor, MessageKind.Insert, """{"n": 1}""", id: id),
            Msg(actor, MessageKind.Modify, """not json"""),
            new(MessageIds.New(), "batch-test", ActorRef.Create(1, actor), MessageKind.Insert, "{}"),
            Msg(actor, MessageKind.Modify, """{"n": 2}""", id: id),
            Msg(actor, MessageKind.Modify, "[1]"),
        ];
        var refused = await Assert.ThrowsAsync<Pr2Exception>(() => fixture.Client.SendBatchAsync(Shard, batch));
        Assert.Equal([(1, ErrorCode.BadBody), (2, ErrorCode.BadMessage), (3, ErrorCode.BadMessage), (4, ErrorCode.BadBody)],
            refused.Refusals.Select(r => (r.Index, r.Code)));
        Assert.Equal(0, await CountWrittenAsync(batch));

        var tooMany = Enumerable.Range(0, 1001).Select(_ => Msg(SharedClusterFixture.NewActorId(), MessageKind.Insert)).ToArray();
        Assert.Equal(ErrorCode.BatchTooLarge, (await Assert.ThrowsAsync<Pr2Exception>(() => fixture.Client.SendBatchAsync(Shard, tooMany))).Code);
        Assert.Equal(ErrorCode.BadMessage, (await Assert.ThrowsAsync<Pr2Exception>(() => fixture.Client.SendBatchAsync(Shard, []))).Code);
        Assert.Equal(ErrorCode.UnknownShard, (await Assert.ThrowsAsync<Pr2Exception>(() => fixture.Client.SendBatchAsync(77, [Msg(actor, MessageKind.Insert)]))).Code);
        Assert.Equal(0, await CountWrittenAsync(tooMany));
    }

    [Fact]
    public async Task Batches_raced_against_single_sends_on_the_same_actors_keep_every_actor_gapless_and_every_batch_whole()
    {
        var actors = Enumerable.Range(0, 8).Select(_ => SharedClusterFixture.NewActorId()).ToArray();
        foreach (var actor in actors)
        {
            await fixture.Client.SendAsync(Shard, actor, MessageKind.Insert, """{"n": 0}""");
        }

        var random = new Random(7);
        var batches = new List<BatchAck>();
        var singles = new List<WriteAck>();
        var refusedBatches = 0;
        var batchers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            for (var round = 0; round < 15; round++)
            {
                Message[] batch;
                lock (random)
                {
                    // Now and then a batch with a stale expected version: refused whole, while the others go on.
                    batch = [.. Enumerable.Range(0, 10).Select(i => Msg(actors[random.Next(actors.Length)], MessageKind.Modify, $$"""{"w{{w}}": {{round}}}""",
                        expectedVersion: round % 5 == 4 && i == 3 ? 1 : null))];
                }

                try
                {
                    var ack = await fixture.Client.SendBatchAsync(Shard, batch);
                    lock (batches)
                    {
                        batches.Add(ack);
                    }
                }
                catch (Pr2Exception e) when (e.Code == ErrorCode.BatchRefused && e.Refusals.All(r => r.Code == ErrorCode.VersionMismatch))
                {
                    Interlocked.Increment(ref refusedBatches);
                    Assert.Equal(0, await CountWrittenAsync(batch));
                }
            }
        }));
        var senders = Enumerable.Range(0, 4).Select(s => Task.Run(async () =>
        {
            for (var i = 0; i < 30; i++)
            {
                var ack = await fixture.Client.SendAsync(Shard, actors[(s + i) % actors.Length], MessageKind.Modify, $$"""{"s{{s}}": {{i}}}""");
                lock (singles)
                {
                    singles.Add(ack);
                }
            }
        }));
        await Task.WhenAll([.. batchers, .. senders]);

        Assert.True(refusedBatches > 0 && batches.Count > 0);
        foreach (var ack in batches)
        {
            Assert.Equal(Enumerable.Range(0, ack.Acks.Length).Select(i => ack.Acks[0].Position + i), ack.Acks.Select(x => x.Position));
        }

        // Every actor's versions are 1..n, each once, in position order, and every acknowledged version is the journal's.
        var journal = await JournalOfAsync(actors);
        foreach (var actor in actors)
        {
            var versions = journal.Where(e => e.Actor == actor).OrderBy(e => e.Position).Select(e => e.Version).ToList();
            Assert.Equal(Enumerable.Range(1, versions.Count).Select(v => (long)v), versions);
        }

        var written = journal.ToDictionary(e => e.MessageId, e => (e.Position, e.Version));
        Assert.All(batches.SelectMany(b => b.Acks).Concat(singles), ack => Assert.Equal(written[ack.MessageId], (ack.Position, ack.Version)));
        Assert.Equal(actors.Length + singles.Count + batches.Sum(b => b.Acks.Length), journal.Count);
    }

    private async Task<List<(Guid MessageId, string Actor, long Position, long Version)>> JournalOfAsync(string[] actors)
    {
        await using var command = _db.Database(Shard).CreateCommand(
            "select message_id, actor_id, position, actor_version from pr2_journal where actor_id = any($1) order by position");
        command.Parameters.Add(new Npgsql.NpgsqlParameter { Value = actors });
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<(Guid, string, long, long)>();
        while (await reader.ReadAsync())
        {
            rows.Add((reader.GetGuid(0), reader.GetString(1), reader.GetInt64(2), reader.GetInt64(3)));
        }

        return rows;
    }

    private async Task<long> CountWrittenAsync(IEnumerable<Message> messages) =>
        await _db.ScalarAsync(Shard, "select count(*) from pr2_journal where message_id = any($1)", messages.Select(m => m.MessageId).ToArray());
}
