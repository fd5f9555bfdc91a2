using Orleans.Streams;
using PR2.Client;
using PR2.Tests.Infrastructure;
using PR2.Tests.Streams;

namespace PR2.Tests;

/// <summary>
/// The shard journals as Orleans streams: a grain with an implicit subscription to <c>pr2/streamtest</c> gets every
/// committed entry of that type of its shard, once, in the journal's order, and nothing of other types.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class JournalStreamTests(PostgresFixture postgres)
{
    private const string Type = "streamtest";

    [Fact]
    public async Task An_implicit_subscriber_gets_every_entry_of_its_type_and_shard_once_in_journal_order()
    {
        var topology = postgres.CreateTopology("journal_streams", 0, 1, 2, 3);
        await using var cluster = await TestClusters.StartAsync(topology.Settings);
        var client = new Pr2Client(cluster.Client);
        int[] shards = [1, 2, 3];

        // 3 shards x 20 actors x 5 messages, interleaved with entries of another type that the subscriber must not see.
        await Task.WhenAll(shards.SelectMany(shard => Enumerable.Range(0, 20).Select(async actor =>
        {
            for (var n = 0; n < 5; n++)
            {
                await client.SendAsync(shard, $"{Type}/{actor}", n == 0 ? MessageKind.Insert : MessageKind.Modify, $$"""{"n": {{n}}}""");
                await client.SendAsync(shard, $"other/{actor}-{n}", MessageKind.Insert, "{}");
            }
        })));

        foreach (var shard in shards)
        {
            var journal = await ReplicaContents.MessageIdsOfTypeAsync(topology.Database(shard), Type);
            Assert.Equal(100, journal.Count);
            IReadOnlyList<(JournalEntry Entry, string Token)> received = [];
            await Eventually.TrueAsync(async () =>
            {
                received = await cluster.Client.GetGrain<IStreamRecorderGrain>(shard).Received();
                return received.Count >= journal.Count;
            }, TimeSpan.FromSeconds(30), $"shard {shard}'s subscriber got all {journal.Count} entries");

            Assert.Equal(journal, received.Select(r => r.Entry.MessageId).ToList());
            Assert.All(received, r => Assert.Equal((shard, Type), (r.Entry.Actor.Shard, r.Entry.Actor.Type)));
            // Each token includes its own entry and every one before it, and none after.
            var tokens = received.Select(r => JournalStreamToken.Parse(r.Token)).ToList();
            for (var i = 0; i < tokens.Count; i++)
            {
                Assert.True(tokens[i].Includes(tokens[Math.Max(0, i - 1)]));
                Assert.True(i + 1 == tokens.Count || !tokens[i].Includes(tokens[i + 1]));
            }
        }
    }

    [Fact]
    public async Task An_orleans_client_subscribes_explicitly_and_resumes_from_a_token()
    {
        var topology = postgres.CreateTopology("journal_stream_client", 0, 1);
        await using var cluster = await TestClusters.StartAsync(topology.Settings);
        var client = new Pr2Client(cluster.Client);
        var stream = cluster.Client.GetStreamProvider(Pr2Streams.ProviderName).GetStream<JournalEntry>(Pr2Streams.OfType(1, Type));
        var first = new CollectingObserver();
        var subscription = await stream.SubscribeAsync(first);
        var sent = new List<Guid>();
        for (var n = 0; n < 30; n++)
        {
            sent.Add((await client.SendAsync(1, $"{Type}/{n % 3}", n < 3 ? MessageKind.Insert : MessageKind.Modify, $$"""{"n": {{n}}}""")).MessageId);
        }

        await Eventually.TrueAsync(() => Task.FromResult(first.Received.Count >= 30), TimeSpan.FromSeconds(30), "the client got all 30 entries");
        var received = first.Received.ToArray();
        Assert.Equal(sent, received.Select(r => r.Entry.MessageId));
        await subscription.UnsubscribeAsync();

        // A new subscription from the 10th entry's token: the rest, after dropping what the token includes.
        var resumed = new CollectingObserver();
        await stream.SubscribeAsync(resumed, received[9].Token);
        await Eventually.TrueAsync(() => Task.FromResult(resumed.Received.Count(r => !received[9].Token.Includes(r.Token)) >= 20),
            TimeSpan.FromSeconds(30), "the resumed subscription got the 20 entries after the token");
        Assert.Equal(sent.Skip(10), resumed.Received.Where(r => !received[9].Token.Includes(r.Token)).Select(r => r.Entry.MessageId));
    }

    [Fact]
    public async Task A_subscriber_of_record_changes_gets_the_record_each_entry_left_as_the_change_feed_gives_it()
    {
        var topology = postgres.CreateTopology("journal_stream_records", 0, 1);
        await using var cluster = await TestClusters.StartAsync(topology.Settings);
        var client = new Pr2Client(cluster.Client);
        var changes = new ChangeCollector();
        await cluster.Client.GetStreamProvider(Pr2Streams.ProviderName).GetStream<RecordChange>(Pr2Streams.OfType(1, Type)).SubscribeAsync(changes);
        // Merges, a cancel and a second actor interleaved: each record is the fold up to its own entry.
        await client.SendAsync(1, $"{Type}/a", MessageKind.Insert, """{"n": 1, "keep": "x"}""");
        await client.SendAsync(1, $"{Type}/b", MessageKind.Insert, """{"n": 10}""");
        await client.SendAsync(1, $"{Type}/a", MessageKind.Modify, """{"n": 2, "keep": null, "more": [1]}""");
        await client.SendAsync(1, $"{Type}/b", MessageKind.Cancel, "{}");
        await client.SendAsync(1, $"{Type}/a", MessageKind.Modify, """{"n": 3}""");

        await Eventually.TrueAsync(() => Task.FromResult(changes.Received.Count >= 5), TimeSpan.FromSeconds(30), "the subscriber got 5 changes");
        var feed = await cluster.Client.GetGrain<IChangeFeedGrain>(1).Read(0, Type, null, 100);
        Assert.Equal(5, feed.Changes.Count);
        Assert.Equal(feed.Changes.Select(Describe), changes.Received.Select(Describe));
        Assert.True(SameJson.As("""{"n": 3, "more": [1]}""", changes.Received.Last().Record.State), changes.Received.Last().Record.State);
    }

    private static string Describe(RecordChange change) =>
        $"{change.Position} {change.Kind} {change.Record.Actor} v{change.Record.Version} {change.Record.Status} " +
        $"{change.Record.State} at {change.Resume}";

    [Fact]
    public async Task After_a_restart_a_token_older_than_the_checkpoint_is_told_so_instead_of_resumed_past_a_gap()
    {
        var topology = postgres.CreateTopology("journal_stream_old_token", 0, 1);
        var settings = new Dictionary<string, string?>(topology.Settings) { ["Pr2:Silo:ServiceId"] = "old-token-test" };
        JournalStreamToken old;
        await using (var cluster = await TestClusters.StartAsync(settings))
        {
            var client = new Pr2Client(cluster.Client);
            var first = new CollectingObserver();
            var subscription = await cluster.Client.GetStreamProvider(Pr2Streams.ProviderName).GetStream<JournalEntry>(Pr2Streams.OfType(1, Type)).SubscribeAsync(first);
            await client.SendAsync(1, $"{Type}/old", MessageKind.Insert, "{}");
            await Eventually.TrueAsync(() => Task.FromResult(!first.Received.IsEmpty), TimeSpan.FromSeconds(30), "the first entry was delivered");
            old = first.Received.Single().Token;
            await subscription.UnsubscribeAsync();

            // More entries than the cache keeps: the checkpoint moves past the old token's.
            await Task.WhenAll(Enumerable.Range(0, 20).Select(async a =>
            {
                for (var n = 0; n < 350; n++)
                {
                    await client.SendAsync(1, $"other/{a}", n == 0 ? MessageKind.Insert : MessageKind.Modify, "{}");
                }
            }));
            await Eventually.TrueAsync(async () => await topology.ScalarAsync(1, "select count(*) from pr2_stream_checkpoint") > 0,
                TimeSpan.FromSeconds(30), "a checkpoint was written");
        }

        await using (var cluster = await TestClusters.StartAsync(settings))
        {
            var client = new Pr2Client(cluster.Client);
            var resumed = new CollectingObserver();
            await cluster.Client.GetStreamProvider(Pr2Streams.ProviderName).GetStream<JournalEntry>(Pr2Streams.OfType(1, Type)).SubscribeAsync(resumed, old);
            await client.SendAsync(1, $"{Type}/new", MessageKind.Insert, "{}");
            await Eventually.TrueAsync(() => Task.FromResult(!resumed.Errors.IsEmpty || !resumed.Received.IsEmpty), TimeSpan.FromSeconds(30),
                "the resumed subscription heard something");
            Assert.Empty(resumed.Received); // the entries between the old token and the checkpoint are not in the cache
            Assert.Contains(resumed.Errors, e => e is DataNotAvailableException);
        }
    }

    [Fact]
    public void A_token_is_older_than_another_only_when_the_other_includes_its_entry_whatever_replica_each_came_from()
    {
        // Replica 1 read ...A8, B1..B4 (the token a subscriber stored); replica 2 reads ...A8, A9, A10, B1...: A9 and A10
        // are not included by the stored token, though fewer entries came before them, and must not pass for processed.
        Guid a = Guid.NewGuid(), b = Guid.NewGuid();
        var stored = new JournalStreamToken(b, 4, [new(a, 8), new(b, 4)]);
        var a9 = new JournalStreamToken(a, 9, [new(a, 9)]);
        var a7 = new JournalStreamToken(a, 7, [new(a, 7)]);
        Assert.True(a9.CompareTo(stored) > 0, "A9 is not older than a token that does not include it");
        Assert.True(a7.CompareTo(stored) < 0, "A7 is older: the stored token includes it");
        Assert.Equal(0, JournalStreamToken.Parse(stored.ToString()).CompareTo(stored));
        Assert.True(stored.Includes(JournalStreamToken.Parse(stored.ToString())));
        Assert.Throws<FormatException>(() => JournalStreamToken.Parse("not-a-token"));

        // Start (where a subscriber with no stored token resumes) is older than every entry and includes none: the pulling
        // agent moves a cursor past what compares older than the token it resumes from, so nothing may pass for delivered.
        Assert.True(JournalStreamToken.Start.CompareTo(a7) < 0 && a7.CompareTo(JournalStreamToken.Start) > 0, "Start is older than A7");
        Assert.True(!JournalStreamToken.Start.Includes(a7) && !JournalStreamToken.Start.Includes(stored), "Start includes no entry");
        Assert.Equal(0, JournalStreamToken.Start.CompareTo(JournalStreamToken.Start));
    }
}
