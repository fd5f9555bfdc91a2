using Microsoft.Extensions.Logging.Abstractions;
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
}
