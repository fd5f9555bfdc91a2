using Microsoft.Extensions.Logging.Abstractions;
using PR2.Grains.Json;
using PR2.Grains.Writing;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// A group commit is sent in one round trip, planned from what the writer remembers of the head and of its actors'
/// versions (taking an actor it has not written at the version its grain proposes, checked in the commit). These
/// are the cases where that is wrong, and the journal must decide instead: a MessageId already written (a retry),
/// a head whose clock moved while its position did not (anti-entropy importing only a lower stamp for a message it
/// already had), and an actor not at the version assumed. <see cref="WriterVersionCheckTests"/> covers a
/// head moved by an imported entry, <see cref="WriterFencingTests"/> a newer writer. A commit sent as one implicit
/// transaction cannot carry SET LOCAL, so durability rests on the connection's own setting: checked here too.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class GroupCommitFromMemoryTests(PostgresFixture postgres)
{
    private const int Shard = 1;

    [Fact]
    public async Task A_retried_message_gets_its_first_acknowledgement_and_nothing_is_written_twice()
    {
        var topology = postgres.CreateTopology("memory_retry", 0, Shard);
        await Migrations.MigrateAsync(topology.Settings);
        await using var writer = await JournalWriter.OpenAsync(Shard, topology.Database(Shard), 100, NullLogger.Instance);
        var actor = new ActorRef(Shard, "item/1");

        await writer.AppendAsync(Appends.Request(actor, MessageKind.Insert, 1));
        var modify = Appends.Request(actor, MessageKind.Modify, 2);
        var first = await writer.AppendAsync(modify);
        var retry = await writer.AppendAsync(modify with { Version = 3 });

        Assert.True(retry.Duplicate);
        Assert.Equal((first.Position, first.Stamp, first.Version), (retry.Position, retry.Stamp, retry.Version));
        Assert.Equal(2, await topology.JournalCountAsync(Shard));
        var next = await writer.AppendAsync(Appends.Request(actor, MessageKind.Modify, 3));
        Assert.Equal((3L, 3L), (next.Position, next.Version));
    }

    [Fact]
    public async Task A_commit_from_memory_that_fails_is_redone_checked_and_the_ones_after_it_keep_order_without_gaps()
    {
        var topology = postgres.CreateTopology("memory_flights", 0, Shard);
        await Migrations.MigrateAsync(topology.Settings);
        // One append per commit: appends queued together go out as successive commits.
        await using var writer = await JournalWriter.OpenAsync(Shard, topology.Database(Shard), 1, NullLogger.Instance);
        var actors = Enumerable.Range(1, 4).Select(i => new ActorRef(Shard, $"item/{i}")).ToList();
        var inserts = actors.Select(a => Appends.Request(a, MessageKind.Insert, 1)).ToList();
        foreach (var insert in inserts)
        {
            await writer.AppendAsync(insert);
        }

        // The second is a retry of a message already written: its commit from memory fails on the MessageId.
        var appends = new[]
        {
            writer.AppendAsync(Appends.Request(actors[0], MessageKind.Modify, 2)),
            writer.AppendAsync(inserts[1] with { Version = 2 }),
            writer.AppendAsync(Appends.Request(actors[2], MessageKind.Modify, 2)),
            writer.AppendAsync(Appends.Request(actors[3], MessageKind.Modify, 2)),
        };
        var acks = await Task.WhenAll(appends);

        Assert.Equal([false, true, false, false], acks.Select(a => a.Duplicate));
        Assert.Equal(2L, acks[1].Position);
        Assert.Equal((5L, 6L, 7L), (acks[0].Position, acks[2].Position, acks[3].Position));
        Assert.Equal(7, await topology.JournalCountAsync(Shard));
        Assert.Equal(7, await topology.ScalarAsync(Shard, "select max(position) from pr2_journal"));
        Assert.Equal(7, await topology.ScalarAsync(Shard, "select position from pr2_writer_head"));
    }

    [Fact]
    public async Task A_writer_new_to_an_actor_refuses_a_taken_or_skipped_version_and_takes_the_next()
    {
        var topology = postgres.CreateTopology("memory_assumed", 0, Shard);
        await Migrations.MigrateAsync(topology.Settings);
        var database = topology.Database(Shard);
        var actor = new ActorRef(Shard, "item/1");
        await using (var earlier = await JournalWriter.OpenAsync(Shard, database, 100, NullLogger.Instance))
        {
            await earlier.AppendAsync(Appends.Request(actor, MessageKind.Insert, 1));
            await earlier.AppendAsync(Appends.Request(actor, MessageKind.Modify, 2));
        }

        // This writer has never written the actor: it takes each append's version on trust and checks it in the commit.
        await using var writer = await JournalWriter.OpenAsync(Shard, database, 100, NullLogger.Instance);
        foreach (var version in new[] { 2L, 4L })
        {
            var refused = await Assert.ThrowsAsync<Pr2Exception>(() => writer.AppendAsync(Appends.Request(actor, MessageKind.Modify, version)));
            Assert.Equal(ErrorCode.StaleActor, refused.Code);
        }

        var next = await writer.AppendAsync(Appends.Request(actor, MessageKind.Modify, 3));
        Assert.Equal((3L, 3L), (next.Version, next.Position));
        var other = await writer.AppendAsync(Appends.Request(new ActorRef(Shard, "item/2"), MessageKind.Insert, 1));
        Assert.Equal((1L, 4L), (other.Version, other.Position));
        Assert.Equal(4, await topology.JournalCountAsync(Shard));
    }

    [Fact]
    public async Task Stamps_follow_a_clock_that_moved_without_the_position()
    {
        var topology = postgres.CreateTopology("memory_clock", 0, Shard);
        await Migrations.MigrateAsync(topology.Settings);
        var database = topology.Database(Shard);
        await using var writer = await JournalWriter.OpenAsync(Shard, database, 100, NullLogger.Instance);
        var actor = new ActorRef(Shard, "item/1");

        await writer.AppendAsync(Appends.Request(actor, MessageKind.Insert, 1));
        var before = await writer.AppendAsync(Appends.Request(actor, MessageKind.Modify, 2));

        // What an import of a stamp an hour ahead (a writer whose wall clock ran fast) does to the head: the clock moves, not the position.
        await database.CreateCommand("update pr2_writer_head set clock = clock + 3600000000").ExecuteNonQueryAsync();
        var after = await writer.AppendAsync(Appends.Request(actor, MessageKind.Modify, 3));

        Assert.Equal(before.Stamp.Counter + 3_600_000_001, after.Stamp.Counter);
        Assert.Equal(after.Stamp.Counter, await topology.ScalarAsync(Shard, "select clock from pr2_writer_head"));
    }

    [Fact]
    public async Task Every_connection_commits_synchronously_even_where_the_database_says_otherwise()
    {
        var topology = postgres.CreateTopology("sync_commit", 0, Shard);
        await Migrations.MigrateAsync(topology.Settings);
        var name = (string)(await topology.Database(Shard).CreateCommand("select current_database()").ExecuteScalarAsync())!;
        await topology.Database(Shard).CreateCommand($"alter database \"{name}\" set synchronous_commit = off").ExecuteNonQueryAsync();
        await using var registry = Migrations.Registry(topology.Settings);

        await using var show = registry.Get(Shard).Primary.CreateCommand("show synchronous_commit");
        Assert.Equal("on", await show.ExecuteScalarAsync());
    }

}
