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

        // After the 3rd entry, watching a type nothing has: the place still says the first three were passed, so that
        // after a change of primary the watch would go on from there, not from the journal's start.
        var third = acks[2];
        var page = await cluster.Client.GetGrain<IChangeFeedGrain>(1).ReadAfter(WatchPosition.At(third.Position), "nothing", null, 10);
        Assert.Empty(page.Changes);
        Assert.True(page.Next!.Includes(third.Origin, third.OriginPosition), "the place includes the entry at the position");
        Assert.False(page.Next.Includes(acks[3].Origin, acks[3].OriginPosition), "and not the one after it");
    }
}
