using PR2.Client;
using PR2.Grains.Records;
using PR2.Grains.Storage;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// A change feed read page after page folds each page onto the record the last one left (its cost follows the new
/// entries, not the actor's history), and every change still carries exactly the record its entry left: compared with
/// the fold of the journal up to that position, also after a restamp changed a stamp the feed had already folded.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ChangeFeedContinuationTests(PostgresFixture postgres)
{
    private const int Shard = 1;
    private const string Actor = "order/hot";

    [Fact]
    public async Task Page_after_page_every_change_carries_the_record_its_entry_left_even_after_a_restamp()
    {
        var topology = postgres.CreateTopology("feed_pages", 0, Shard);
        await using var cluster = await TestClusters.StartAsync(topology.Settings);
        var client = new Pr2Client(cluster.Client);
        var feed = cluster.Client.GetGrain<IChangeFeedGrain>(Shard);
        var insert = await client.SendAsync(Shard, Actor, MessageKind.Insert, """{"v": 0}""");
        for (var v = 1; v <= 30; v++)
        {
            await client.SendAsync(Shard, Actor, MessageKind.Modify, $$"""{"v": {{v}}, "f{{v % 3}}": {{v}}}""");
            await client.SendAsync(Shard, $"order/other{v}", MessageKind.Insert, "{}");
        }

        var (after, seen) = await ReadAllAsync(feed, 0);
        Assert.Equal(31, seen);

        // The replicas agree on a lower stamp for the insert (as anti-entropy records it): every later record's first stamp changes.
        await using (var restamp = topology.Database(Shard).CreateCommand("insert into pr2_restamp (message_id, lamport_counter, lamport_shard) values ($1, 0, 0)"))
        {
            restamp.Parameters.Add(new Npgsql.NpgsqlParameter { Value = insert.MessageId });
            await restamp.ExecuteNonQueryAsync();
        }

        for (var v = 31; v <= 40; v++)
        {
            await client.SendAsync(Shard, Actor, MessageKind.Modify, $$"""{"v": {{v}}}""");
        }

        var (_, more) = await ReadAllAsync(feed, after);
        Assert.Equal(10, more);

        // Reads the watched actor's changes four at a time from a position, checking each against the journal's fold.
        async Task<(long After, int Seen)> ReadAllAsync(IChangeFeedGrain grain, long from)
        {
            var count = 0;
            while (true)
            {
                var page = await grain.Read(from, null, Actor, 4);
                foreach (var change in page.Changes)
                {
                    var history = await JournalStore.ReadActorAsync(topology.Database(Shard), new ActorRef(Shard, Actor));
                    var expected = RecordState.Fold(history.Where(e => e.Position <= change.Position)).ToRecord(new ActorRef(Shard, Actor));
                    Assert.Equal(expected, change.Record);
                    count++;
                }

                if (page.Changes.Count == 0)
                {
                    return (from, count);
                }

                from = page.NextAfter;
            }
        }
    }
}
