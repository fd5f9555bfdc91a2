using PR2.Client;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// Live changes for .NET callers (<see cref="Pr2Client.WatchAsync"/>): one actor's changes arrive in order with the
/// record each left, after the position the watch starts from; a watcher resuming after a position misses and repeats nothing.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class LiveChangeTests(PostgresFixture postgres)
{
    [Fact]
    public async Task A_watcher_sees_one_actors_changes_in_order_and_resumes_after_the_last_position()
    {
        var topology = postgres.CreateTopology("live_changes", 0, 1);
        await using var cluster = await TestClusters.StartAsync(topology.Settings);
        var client = new Pr2Client(cluster.Client);
        await client.SendAsync(1, "order/before", MessageKind.Insert, "{}"); // before the watch: not seen

        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var head = await cluster.Client.GetGrain<IChangeFeedGrain>(1).Head();
        var watched = new List<RecordChange>();
        var watching = Task.Run(async () =>
        {
            await foreach (var change in client.WatchAsync(1, actorId: "order/1", afterPosition: head, cancellationToken: deadline.Token))
            {
                watched.Add(change);
                if (watched.Count == 12)
                {
                    break;
                }
            }
        });

        await client.SendAsync(1, "order/1", MessageKind.Insert, """{"n": 0}""");
        for (var n = 1; n < 12; n++)
        {
            await client.SendAsync(1, $"order/other{n}", MessageKind.Insert, "{}");
            await client.SendAsync(1, "order/1", n == 11 ? MessageKind.Cancel : MessageKind.Modify, n == 11 ? "" : $$"""{"n": {{n}}}""");
        }

        await watching.WaitAsync(deadline.Token);
        Assert.Equal(Enumerable.Range(1, 12).Select(v => (long)v), watched.Select(c => c.Record.Version));
        Assert.All(watched, c => Assert.Equal("order/1", c.Record.Actor.ActorId));
        Assert.Equal(watched.Select(c => c.Position).Order(), watched.Select(c => c.Position));
        Assert.Equal(MessageKind.Insert, watched[0].Kind);
        Assert.Equal((MessageKind.Cancel, RecordStatus.Canceled), (watched[^1].Kind, watched[^1].Record.Status));
        Assert.Equal("""{"n":5}""", watched[5].Record.State?.Replace(" ", "", StringComparison.Ordinal));

        // Resuming after the sixth change gives exactly the rest.
        var rest = new List<RecordChange>();
        await foreach (var change in client.WatchAsync(1, actorId: "order/1", afterPosition: watched[5].Position, cancellationToken: deadline.Token))
        {
            rest.Add(change);
            if (rest.Count == 6)
            {
                break;
            }
        }

        Assert.Equal(watched.Skip(6).Select(c => c.Position), rest.Select(c => c.Position));
    }

    [Fact]
    public async Task A_watch_goes_live_on_the_journal_stream_and_changes_are_pushed_to_it_without_polling()
    {
        var topology = postgres.CreateTopology("live_push", 0, 1);
        await using var cluster = await TestClusters.StartAsync(topology.Settings);
        var client = new Pr2Client(cluster.Client);
        using var counters = new WatchCounters();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        // Polling once an hour: only a push can bring the changes within the test's minute.
        await using var watch = client.WatchAsync(1, after: null, type: "order", pollInterval: TimeSpan.FromHours(1), cancellationToken: deadline.Token)
            .GetAsyncEnumerator(deadline.Token);
        var next = watch.MoveNextAsync();
        await Eventually.TrueAsync(() => Task.FromResult(counters.Live >= 1), TimeSpan.FromSeconds(30), "the watch went live on the stream");
        for (var n = 0; n < 5; n++)
        {
            await client.SendAsync(1, "order/pushed", n == 0 ? MessageKind.Insert : MessageKind.Modify, $$"""{"n": {{n}}}""");
        }

        var versions = new List<long>();
        for (; await next; next = watch.MoveNextAsync())
        {
            versions.Add(watch.Current.Record.Version);
            if (versions.Count == 5)
            {
                break;
            }
        }

        Assert.Equal([1L, 2, 3, 4, 5], versions);
    }

    [Fact]
    public async Task A_reader_that_falls_behind_the_stream_reads_on_from_the_journal_and_misses_nothing()
    {
        var topology = postgres.CreateTopology("live_slow_reader", 0, 1);
        await using var cluster = await TestClusters.StartAsync(topology.Settings);
        var client = new Pr2Client(cluster.Client);
        using var counters = new WatchCounters();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(100));
        await using var watch = client.WatchAsync(1, after: null, type: "order", cancellationToken: deadline.Token).GetAsyncEnumerator(deadline.Token);
        var next = watch.MoveNextAsync();
        await Eventually.TrueAsync(() => Task.FromResult(counters.Live >= 1), TimeSpan.FromSeconds(30), "the watch went live on the stream");

        // The reader takes nothing while three buffers' worth of changes are written, 10 actors at once.
        const int Actors = 10, PerActor = 300;
        await Task.WhenAll(Enumerable.Range(0, Actors).Select(async a =>
        {
            for (var n = 0; n < PerActor; n++)
            {
                await client.SendAsync(1, $"order/slow{a}", n == 0 ? MessageKind.Insert : MessageKind.Modify, $$"""{"n": {{n}}}""");
            }
        }));
        await Eventually.TrueAsync(() => Task.FromResult(counters.Overflows >= 1), TimeSpan.FromSeconds(60), "the watch left the stream, its buffer full");

        var received = new List<RecordChange>();
        for (; await next; next = watch.MoveNextAsync())
        {
            received.Add(watch.Current);
            if (received.Count == Actors * PerActor)
            {
                break;
            }
        }

        var positions = new List<long>();
        for (IReadOnlyList<JournalEntry> page = []; ; )
        {
            page = await client.ReadJournalAsync(1, page.Count == 0 ? 1 : page[^1].Position + 1, 1000);
            if (page.Count == 0)
            {
                break;
            }

            positions.AddRange(page.Where(e => e.Actor.Type == "order").Select(e => e.Position));
        }

        Assert.Equal(positions, received.Select(c => c.Position));
        Assert.All(received.GroupBy(c => c.Record.Actor), actor => Assert.Equal(Enumerable.Range(1, PerActor).Select(v => (long)v), actor.Select(c => c.Record.Version)));
    }

    [Fact]
    public async Task A_watch_of_one_actor_resumed_from_long_ago_catches_up_over_other_entries_and_goes_live_without_stream_errors()
    {
        var topology = postgres.CreateTopology("live_old_place", 0, 1);
        await using var cluster = await TestClusters.StartAsync(topology.Settings);
        var client = new Pr2Client(cluster.Client);
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await client.SendAsync(1, "order/x", MessageKind.Insert, """{"n": 0}""");
        RecordChange? last = null;
        await foreach (var change in client.WatchAsync(1, WatchPosition.At(0), actorId: "order/x", cancellationToken: deadline.Token))
        {
            last = change;
            break;
        }

        // Far more entries of other actors than the stream's cache holds: the watch's last place names none of them.
        await Task.WhenAll(Enumerable.Range(0, 20).Select(async a =>
        {
            for (var n = 0; n < 350; n++)
            {
                await client.SendAsync(1, $"other/{a}", n == 0 ? MessageKind.Insert : MessageKind.Modify, $$"""{"n": {{n}}}""");
            }
        }));

        using var counters = new WatchCounters();
        await using var watch = client.WatchAsync(1, last!.Resume, actorId: "order/x", cancellationToken: deadline.Token).GetAsyncEnumerator(deadline.Token);
        var next = watch.MoveNextAsync();
        await Eventually.TrueAsync(() => Task.FromResult(counters.Live >= 1), TimeSpan.FromSeconds(30), "the watch caught up and went live");
        await client.SendAsync(1, "order/x", MessageKind.Modify, """{"n": 1}""");
        Assert.True(await next);
        Assert.Equal((2L, """{"n":1}"""), (watch.Current.Record.Version, watch.Current.Record.State?.Replace(" ", "", StringComparison.Ordinal)));
        Assert.Equal((0L, 1L), (counters.StreamErrors, counters.Live));
    }

    [Fact]
    public async Task A_bare_position_becomes_a_place_that_names_what_the_replica_holds_up_to_it()
    {
        var topology = postgres.CreateTopology("live_place", 0, 1);
        await using var cluster = await TestClusters.StartAsync(topology.Settings);
        var client = new Pr2Client(cluster.Client);
        var acks = new List<WriteAck>();
        for (var n = 0; n < 6; n++)
        {
            acks.Add(await client.SendAsync(1, $"order/p{n}", MessageKind.Insert, "{}"));
        }

        // After the 3rd entry, one change at a time: the place says the first three were passed, so that after a change
        // of primary the watch would go on from there, not from the journal's start.
        var feed = cluster.Client.GetGrain<IChangeFeedGrain>(1);
        var third = acks[2];
        var page = await feed.ReadAfter(WatchPosition.At(third.Position), "order", null, 1);
        Assert.Equal(acks[3].Position, Assert.Single(page.Changes).Position);
        Assert.False(page.AtHead);
        Assert.True(page.Next!.Includes(third.Origin, third.OriginPosition), "the place includes the entry at the position");
        Assert.True(page.Next.Includes(acks[3].Origin, acks[3].OriginPosition), "and the change delivered");
        Assert.False(page.Next.Includes(acks[4].Origin, acks[4].OriginPosition), "and not the one after it");

        // At the head, the place covers every entry read, wanted or not (a watch goes live on the stream from it).
        var idle = await feed.ReadAfter(WatchPosition.At(third.Position), "nothing", null, 10);
        Assert.True(idle.AtHead);
        Assert.Empty(idle.Changes);
        Assert.True(idle.Next!.Includes(acks[5].Origin, acks[5].OriginPosition), "the place at the head includes the last entry");
    }
}
