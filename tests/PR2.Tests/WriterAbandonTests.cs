using Microsoft.Extensions.Logging.Abstractions;
using PR2.Grains.Replication;
using PR2.Grains.Writing;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// A writer given up by its owner (its database stopped answering) says which MessageIds may still commit there: the
/// batch in flight. What was queued behind it is never sent, so it cannot commit behind the owner's back after the
/// owner has failed over and answered for those messages elsewhere.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class WriterAbandonTests(PostgresFixture postgres)
{
    private const int Shard = 1;

    [Fact]
    public async Task An_abandoned_writer_reports_the_batch_in_flight_and_never_sends_what_was_queued()
    {
        var topology = postgres.CreateTopology("writer_abandon", 0, Shard);
        await Migrations.MigrateAsync(topology.Settings);
        var writer = await JournalWriter.OpenAsync(Shard, topology.Database(Shard), 100, NullLogger.Instance);
        var inFlight = Appends.Request(new ActorRef(Shard, "item/in-flight"), MessageKind.Insert, 1);
        var queued = Appends.Request(new ActorRef(Shard, "item/queued"), MessageKind.Insert, 1);
        Task<WriteAck> first, second;
        IReadOnlyList<Guid> uncertain;
        await using (var hold = await HeadLock.TakeAsync(topology.Database(Shard)))
        {
            first = writer.AppendAsync(inFlight);
            await hold.WaitForWaiterAsync();
            second = writer.AppendAsync(queued);
            uncertain = writer.Abandon();
            Assert.False(writer.IsOpen);
            await hold.ReleaseAsync();
        }

        Assert.Equal([inFlight.Message.MessageId], uncertain);
        Assert.Equal(1, (await first).Position); // the commit in flight went on
        var notSent = await Assert.ThrowsAsync<Pr2Exception>(() => second);
        Assert.Equal(ErrorCode.ShardUnavailable, notSent.Code);
        Assert.Contains("nothing was written", notSent.Message, StringComparison.Ordinal);
        await writer.DisposeAsync();
        Assert.Equal(0, await topology.ScalarAsync(Shard, "select count(*) from pr2_journal where message_id = $1", queued.Message.MessageId));
        Assert.Equal(1, await topology.JournalCountAsync(Shard));
    }

    [Fact]
    public async Task An_append_committed_but_refused_by_the_ack_policy_is_reported_as_maybe_written_also_after_the_writer_is_given_up()
    {
        // Quorum over two replicas; the other one is fenced by a newer term, so the gate copies the entry there and
        // then refuses to count the copy: committed on both, acknowledged nowhere.
        var primary = postgres.CreateTopology("writer_abandon_gate_p", 0, Shard);
        var other = postgres.CreateTopology("writer_abandon_gate_o", 0, Shard);
        await Migrations.MigrateAsync(primary.Settings);
        await Migrations.MigrateAsync(other.Settings);
        var (source, copy) = (primary.Database(Shard), other.Database(Shard));
        ReplicationGate? gate = null;
        var writer = await JournalWriter.OpenAsync(Shard, source, 100, NullLogger.Instance, beforeAck: () => gate!.EnsureAsync());
        gate = new ReplicationGate(Shard, source, [copy], 2, TimeSpan.FromSeconds(10), writer.Epoch);
        Assert.True(await JournalWriter.FenceAsync(copy, writer.Epoch + 1));

        var refusedAck = Appends.Request(new ActorRef(Shard, "item/refused-ack"), MessageKind.Insert, 1);
        var refused = await Assert.ThrowsAsync<Pr2Exception>(() => writer.AppendAsync(refusedAck));
        Assert.Equal(ErrorCode.ShardUnavailable, refused.Code);
        Assert.Contains("committed on the primary", refused.Message, StringComparison.Ordinal);
        Assert.True(writer.IsOpen);
        var sql = "select count(*) from pr2_journal where message_id = $1";
        Assert.Equal(1, await primary.ScalarAsync(Shard, sql, refusedAck.Message.MessageId));
        Assert.Equal(1, await other.ScalarAsync(Shard, sql, refusedAck.Message.MessageId));

        // Given up later (its primary broke): an owner retrying elsewhere must know the refused append is written, or a
        // first attempt there would find it and answer Duplicate to a call that was never sent twice.
        Assert.True(writer.FailedAfterCommit(refusedAck.Message.MessageId));
        writer.Abandon();
        Assert.True(writer.FailedAfterCommit(refusedAck.Message.MessageId));
        Assert.False(writer.FailedAfterCommit(Guid.NewGuid()));
        await writer.DisposeAsync();
    }
}
