using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using PR2.Grains.Writing;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// Overlapped commits (<c>Pr2:Write:OverlapCommits</c>): the next batch's inserts are sent while a commit is in flight,
/// and it moves the head and commits only once that one did. Checked against what each append was told: positions
/// contiguous, stamps rising with them, each actor's versions in order, every acknowledgement where the journal has it;
/// a commit that fails in the middle of the pipeline fails only its own appends (the one behind it is planned again),
/// and one whose backend is killed mid-commit leaves nothing of the one behind it.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class OverlappedCommitTests(PostgresFixture postgres)
{
    private const int Shard = 1;

    [Fact]
    public async Task Overlapped_commits_keep_positions_contiguous_stamps_rising_and_each_actor_in_order()
    {
        var topology = postgres.CreateTopology("overlap_order", 0, Shard);
        await Migrations.MigrateAsync(topology.Settings);
        await using var writer = await JournalWriter.OpenAsync(Shard, topology.Database(Shard), 8, NullLogger.Instance, overlapCommits: true);
        var told = new System.Collections.Concurrent.ConcurrentBag<WriteAck>();

        // 24 actors, each sending in order; every 7th message also sent a second time at once (a retry while the first
        // attempt is in flight): the two answers must be one entry.
        await Task.WhenAll(Enumerable.Range(0, 24).Select(async a =>
        {
            var actor = new ActorRef(Shard, $"item/{a}");
            for (var version = 1L; version <= 40; version++)
            {
                var request = Appends.Request(actor, version == 1 ? MessageKind.Insert : MessageKind.Modify, version);
                if (version % 7 != 0)
                {
                    told.Add(await writer.AppendAsync(request));
                    continue;
                }

                var both = await Task.WhenAll(writer.AppendAsync(request), writer.AppendAsync(request));
                Assert.Equal(1, both.Count(ack => !ack.Duplicate));
                Assert.Equal(both[0].Position, both[1].Position);
                told.Add(both.Single(ack => !ack.Duplicate));
            }
        }));

        // Atomic batches through the same pipeline.
        var batches = await Task.WhenAll(Enumerable.Range(0, 6).Select(b => writer.AppendBatchAsync(
            [.. Enumerable.Range(0, 5).Select(i => Appends.Request(new ActorRef(Shard, $"batch/{b}/{i}"), MessageKind.Insert, 1))])));
        foreach (var ack in batches.SelectMany(b => b.Acks))
        {
            told.Add(ack);
        }

        var rows = await JournalAsync(topology);
        Assert.Equal(24 * 40 + 30, told.Count);
        AssertJournalHolds(rows, told);
        Assert.Equal(rows.Count, await topology.ScalarAsync(Shard, "select position from pr2_writer_head"));
        Assert.True(writer.OverlappedCommits > 0, "no commit was overlapped: the test proves nothing about overlap");
    }

    [Fact]
    public async Task A_commit_failing_in_the_middle_of_the_pipeline_fails_only_its_own_appends()
    {
        var topology = postgres.CreateTopology("overlap_fail", 0, Shard);
        await Migrations.MigrateAsync(topology.Settings);
        var database = topology.Database(Shard);
        // A real refusal by the server, after a pause that lets the commit behind it send its inserts.
        await database.CreateCommand("""
            create function test_poison() returns trigger language plpgsql as $$
            begin
                perform pg_sleep(0.2);
                raise exception 'refused by the test' using errcode = 'P0001';
            end $$;
            create trigger test_poison before insert on pr2_journal for each row when (new.actor_id like 'poison/%') execute function test_poison();
            """).ExecuteNonQueryAsync();
        // One append per commit: which appends shared the refused commit is known (only the poisoned one).
        await using var writer = await JournalWriter.OpenAsync(Shard, database, 1, NullLogger.Instance, overlapCommits: true);
        var told = new System.Collections.Concurrent.ConcurrentBag<WriteAck>();
        using var stop = new CancellationTokenSource();

        var writers = Enumerable.Range(0, 12).Select(async a =>
        {
            var actor = new ActorRef(Shard, $"item/{a}");
            for (var version = 1L; !stop.IsCancellationRequested || version <= 10; version++)
            {
                // Any error here (a planned-again append failed instead) fails the test.
                told.Add(await writer.AppendAsync(Appends.Request(actor, version == 1 ? MessageKind.Insert : MessageKind.Modify, version)));
            }
        }).ToList();

        var poisoned = new List<Pr2Exception>();
        for (var i = 0; i < 5; i++)
        {
            poisoned.Add(await Assert.ThrowsAsync<Pr2Exception>(() => writer.AppendAsync(Appends.Request(new ActorRef(Shard, $"poison/{i}"), MessageKind.Insert, 1))));
        }

        await stop.CancelAsync();
        await Task.WhenAll(writers);

        Assert.All(poisoned, refusal =>
        {
            Assert.Equal(ErrorCode.ShardUnavailable, refusal.Code);
            Assert.Contains("nothing was written", refusal.Message, StringComparison.Ordinal);
        });
        var rows = await JournalAsync(topology);
        Assert.DoesNotContain(rows, row => row.ActorId.StartsWith("poison/", StringComparison.Ordinal));
        AssertJournalHolds(rows, told);
        Assert.True(writer.OverlapsUndone > 0, "no commit behind a refused one was undone: the test proves nothing about the pipeline");
        Assert.False(writer.IsBroken);
    }

    [Fact]
    public async Task A_commit_whose_backend_is_killed_mid_commit_leaves_nothing_of_the_one_behind()
    {
        var topology = postgres.CreateTopology("overlap_kill", 0, Shard);
        await Migrations.MigrateAsync(topology.Settings);
        var database = topology.Database(Shard);
        await database.CreateCommand("""
            create function test_slow() returns trigger language plpgsql as $$ begin perform pg_sleep(1); return new; end $$;
            create trigger test_slow before insert on pr2_journal for each row when (new.actor_id like 'slow/%') execute function test_slow();
            """).ExecuteNonQueryAsync();
        await using var writer = await JournalWriter.OpenAsync(Shard, database, 1, NullLogger.Instance, overlapCommits: true);
        var told = new System.Collections.Concurrent.ConcurrentBag<WriteAck>();
        var refused = new System.Collections.Concurrent.ConcurrentBag<(Guid MessageId, Pr2Exception Reason)>();

        var writers = Enumerable.Range(0, 12).Select(async a =>
        {
            var actor = new ActorRef(Shard, $"item/{a}");
            for (var version = 1L; version <= 10_000 && !writer.IsBroken; version++)
            {
                var request = Appends.Request(actor, version == 1 ? MessageKind.Insert : MessageKind.Modify, version);
                try
                {
                    told.Add(await writer.AppendAsync(request));
                }
                catch (Pr2Exception e)
                {
                    refused.Add((request.Message.MessageId, e));
                    return;
                }
            }
        }).ToList();

        await Eventually.TrueAsync(() => Task.FromResult(told.Count >= 50), TimeSpan.FromSeconds(30), "the writers got going");
        var slow = Appends.Request(new ActorRef(Shard, "slow/1"), MessageKind.Insert, 1);
        var slowAppend = writer.AppendAsync(slow);
        // The backend running the slow commit, caught in its trigger's sleep, is killed.
        await using (var admin = NpgsqlDataSource.Create(postgres.Server.ConnectionString("postgres")))
        {
            await Eventually.TrueAsync(async () =>
            {
                await using var kill = admin.CreateCommand("""
                    select count(pg_terminate_backend(pid)) from pg_stat_activity
                    where wait_event = 'PgSleep' and query like '%pr2_journal%' and datname = $1
                    """);
                kill.Parameters.Add(new() { Value = new NpgsqlConnectionStringBuilder(database.ConnectionString).Database });
                return (long)(await kill.ExecuteScalarAsync())! > 0;
            }, TimeSpan.FromSeconds(30), "the slow commit's backend was found and killed");
        }

        var slowAnswer = await Assert.ThrowsAsync<Pr2Exception>(() => slowAppend);
        await Task.WhenAll(writers);

        Assert.Equal(ErrorCode.ShardUnavailable, slowAnswer.Code);
        Assert.True(writer.IsBroken);
        var rows = await JournalAsync(topology);
        AssertJournalHolds(rows, told);
        // Whatever was refused with "nothing written" is nowhere in the journal; nothing else was refused.
        Assert.NotEmpty(refused);
        Assert.All(refused, r =>
        {
            Assert.Equal(ErrorCode.ShardUnavailable, r.Reason.Code);
            Assert.Contains("nothing was written", r.Reason.Message, StringComparison.Ordinal);
            Assert.DoesNotContain(rows, row => row.MessageId == r.MessageId);
        });
        Assert.DoesNotContain(rows, row => row.MessageId == slow.Message.MessageId);
        Assert.True(writer.OverlapsUndone > 0, "no commit was in flight behind the killed one: the test proves nothing about the pipeline");
    }

    [Fact]
    public async Task A_commit_behind_gives_way_to_an_import_that_holds_the_head_and_needs_its_positions()
    {
        var topology = postgres.CreateTopology("overlap_import", 0, Shard);
        await Migrations.MigrateAsync(topology.Settings);
        var database = topology.Database(Shard);
        await using var writer = await JournalWriter.OpenAsync(Shard, database, 100, NullLogger.Instance, overlapCommits: true);
        var told = new List<WriteAck> { await writer.AppendAsync(Appends.Request(new ActorRef(Shard, "item/0"), MessageKind.Insert, 1)) };

        // An import as anti-entropy makes one (ReplicaSync): the head's row lock first, then entries after the head. Taken
        // right after a commit, so that the next one is sent from memory (not first confirmed, as after an idle while).
        await using var import = await database.OpenConnectionAsync();
        await using var transaction = await import.BeginTransactionAsync();
        await using (var lockHead = new NpgsqlCommand("select position from pr2_writer_head for update", import, transaction))
        {
            Assert.Equal(1L, await lockHead.ExecuteScalarAsync());
        }

        // A waits for the head; B, sent behind it, holds position 3 uncommitted until A commits.
        var a = writer.AppendAsync(Appends.Request(new ActorRef(Shard, "item/a"), MessageKind.Insert, 1));
        await Eventually.TrueAsync(async () => await topology.ScalarAsync(Shard, "select count(*) from pg_locks where not granted") > 0,
            TimeSpan.FromSeconds(10), "A waits for the head's row lock");
        var b = writer.AppendAsync(Appends.Request(new ActorRef(Shard, "item/b"), MessageKind.Insert, 1));
        await Eventually.TrueAsync(async () => await topology.ScalarAsync(Shard,
                "select count(*) from pg_stat_activity where state = 'idle in transaction' and query like '%insert into pr2_journal%'") > 0,
            TimeSpan.FromSeconds(10), "B's inserts wait, uncommitted, behind A");

        // The import takes positions 2 and 3: it waits for B, B for A, A for the import, until B gives way.
        var waited = System.Diagnostics.Stopwatch.StartNew();
        await using (var insert = new NpgsqlCommand("""
            insert into pr2_journal (position, message_id, lamport_counter, lamport_shard, origin_replica, origin_position, actor_id, kind,
                                     actor_version, body, content_hash, sender)
            select 1 + v, gen_random_uuid(), 1 + v, 1, '00000000-0000-0000-0000-00000000000f', v, 'imported/1', case when v = 1 then 1 else 2 end,
                   v, '{"v": 1}', '\x00', 'test'
            from generate_series(1, 2) as v;
            update pr2_writer_head set position = 3, clock = greatest(clock, 3);
            """, import, transaction) { CommandTimeout = 30 })
        {
            await insert.ExecuteNonQueryAsync();
        }

        await transaction.CommitAsync();
        waited.Stop();
        told.AddRange(await Task.WhenAll(a, b));

        Assert.True(waited.Elapsed < TimeSpan.FromSeconds(4), $"the import waited {waited.Elapsed.TotalSeconds:0.0} s");
        Assert.False(writer.IsBroken);
        var rows = await JournalAsync(topology);
        AssertJournalHolds(rows.Where(r => r.ActorId != "imported/1").ToList(), told, contiguous: false);
        Assert.Equal(Enumerable.Range(1, 5).Select(i => (long)i), rows.Select(r => r.Position));
        Assert.Equal(["item/0", "imported/1", "imported/1", "item/a", "item/b"], rows.Select(r => r.ActorId));
    }

    // Positions exactly 1..n, stamps rising with them, each actor's versions 1..k in position order, and every
    // acknowledgement at its position with its stamp and version (and nothing in the journal that was not acknowledged).
    private static void AssertJournalHolds(List<Entry> rows, IReadOnlyCollection<WriteAck> told, bool contiguous = true)
    {
        if (contiguous)
        {
            Assert.Equal(Enumerable.Range(1, rows.Count).Select(i => (long)i), rows.Select(r => r.Position));
        }

        Assert.True(rows.Zip(rows.Skip(1)).All(pair => pair.First.Counter < pair.Second.Counter), "stamps do not rise with positions");
        foreach (var actor in rows.GroupBy(r => r.ActorId))
        {
            Assert.Equal(Enumerable.Range(1, actor.Count()).Select(i => (long)i), actor.Select(r => r.Version));
        }

        var byId = rows.ToDictionary(r => r.MessageId);
        Assert.Equal(rows.Count, told.Count);
        foreach (var ack in told)
        {
            Assert.True(byId.TryGetValue(ack.MessageId, out var row), $"acknowledged {ack.MessageId} at {ack.Position} is not in the journal");
            Assert.Equal((ack.Position, ack.Stamp.Counter, ack.Version, ack.Actor.ActorId), (row.Position, row.Counter, row.Version, row.ActorId));
        }
    }

    private static async Task<List<Entry>> JournalAsync(TestTopology topology)
    {
        var rows = new List<Entry>();
        await using var command = topology.Database(Shard).CreateCommand(
            "select position, message_id, lamport_counter, actor_version, actor_id from pr2_journal order by position");
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            rows.Add(new Entry(reader.GetInt64(0), reader.GetGuid(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetString(4)));
        }

        return rows;
    }

    private sealed record Entry(long Position, Guid MessageId, long Counter, long Version, string ActorId);
}
