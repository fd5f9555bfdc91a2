using Microsoft.Extensions.Logging.Abstractions;
using PR2.Grains.Json;
using PR2.Grains.Writing;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// The writer's last line of defence: an entry whose data PostgreSQL refuses (the door refuses such bodies, so this
/// one is made past it) fails alone, with a final refusal, and the appends that shared its group commit are written.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class WriterBadDataTests(PostgresFixture postgres)
{
    private const int Shard = 1;

    [Fact]
    public async Task An_entry_postgres_refuses_fails_alone_and_the_rest_of_its_group_commit_is_written()
    {
        var topology = postgres.CreateTopology("writer_bad_data", 0, Shard);
        await Migrations.MigrateAsync(topology.Settings);
        await using var writer = await JournalWriter.OpenAsync(Shard, topology.Database(Shard), 100, NullLogger.Instance);
        List<Task<WriteAck>> appends;

        // Past the door: a body with \u0000, which jsonb refuses (22P05), queued among good ones into one batch. The
        // test holds the head's row lock while the first append waits on it, so everything after it queues up.
        var badActor = new ActorRef(Shard, "item/bad");
        const string badBody = """{"a":"\u0000"}""";
        var badMessage = new Message(Guid.NewGuid(), "test", badActor, MessageKind.Insert, badBody);
        var bad = new AppendRequest(badMessage, badBody, MessageBody.ContentHash(badActor, MessageKind.Insert, badBody), 1);
        var good = Enumerable.Range(1, 20).Select(i => Appends.Request(new ActorRef(Shard, $"item/{i}"), MessageKind.Insert, 1)).ToList();
        await using (var hold = await HeadLock.TakeAsync(topology.Database(Shard)))
        {
            var first = writer.AppendAsync(Appends.Request(new ActorRef(Shard, "item/first"), MessageKind.Insert, 1));
            await hold.WaitForWaiterAsync();
            appends = good.Take(10).Select(writer.AppendAsync).Append(writer.AppendAsync(bad)).Concat(good.Skip(10).Select(writer.AppendAsync)).ToList();
            await hold.ReleaseAsync();
            await first;
        }

        var refusal = await Assert.ThrowsAsync<Pr2Exception>(() => appends[10]);
        Assert.Equal(ErrorCode.BadBody, refusal.Code);
        Assert.DoesNotContain("unsupported Unicode", refusal.Message, StringComparison.Ordinal); // PostgreSQL's text stays in the log
        var acks = await Task.WhenAll(appends.Where((_, i) => i != 10));
        Assert.Equal(Enumerable.Range(2, 20).Select(p => (long)p), acks.Select(a => a.Position).Order());
        Assert.Equal(21, await topology.JournalCountAsync(Shard));
        Assert.Equal(0, await topology.ScalarAsync(Shard, "select count(*) from pr2_journal where message_id = $1", badMessage.MessageId));

        // The writer goes on: the next append takes the next position.
        var next = await writer.AppendAsync(Appends.Request(new ActorRef(Shard, "item/after"), MessageKind.Insert, 1));
        Assert.Equal(22, next.Position);
    }
}
