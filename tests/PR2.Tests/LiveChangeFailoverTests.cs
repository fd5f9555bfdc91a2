using System.Collections.Concurrent;
using Npgsql;
using PR2.Client;
using PR2.Tests.Infrastructure;
using Xunit.Abstractions;

namespace PR2.Tests;

/// <summary>
/// A watch of record changes (<see cref="Pr2Client.WatchAsync(int, WatchPosition?, string?, string?, TimeSpan?, CancellationToken)"/>,
/// the same as SSE) through two changes of primary that leave the replicas with their entries in different orders,
/// and a watch resumed from a place taken on the other replica: every change once, nothing skipped, nothing repeated.
/// </summary>
public sealed class LiveChangeFailoverTests(TwoPostgresServers servers, ITestOutputHelper output) : IClassFixture<TwoPostgresServers>
{
    private const int Shard = 1;
    private static readonly string[] Actors = [.. Enumerable.Range(0, 10).Select(i => $"account/{i}")];

    [Fact]
    public async Task A_watch_goes_on_through_two_fail_overs_and_resumes_from_a_place_taken_on_the_other_replica()
    {
        var control = servers.B.CreateTopology("watch_failover", 0);
        var onA = servers.A.CreateTopology("watch_failover_a", Shard);
        var onB = servers.B.CreateTopology("watch_failover_b", Shard);
        var settings = new Dictionary<string, string?>(control.Settings)
        {
            [$"Pr2:Topology:Shards:{Shard}:Replicas:0"] = onA.Settings[$"Pr2:Topology:Shards:{Shard}:Replicas:0"],
            [$"Pr2:Topology:Shards:{Shard}:Replicas:1"] = onB.Settings[$"Pr2:Topology:Shards:{Shard}:Replicas:0"],
        };
        await using var cluster = await TestClusters.StartAsync(settings);
        var client = new Pr2Client(cluster.Client);
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        var first = new ConcurrentQueue<RecordChange>();
        var start = await cluster.Client.GetGrain<IChangeFeedGrain>(Shard).Now();
        var watching = Task.Run(async () =>
        {
            await foreach (var change in client.WatchAsync(Shard, start, "account", cancellationToken: stop.Token))
            {
                first.Enqueue(change);
            }
        });
        var (aDown, bDown, bPaused) = (false, false, false);
        try
        {
            await RoundAsync(client, 0);
            await RoundAsync(client, 1);
            await CaughtUpAsync(client);

            // Round 2 is acknowledged on A (Primary policy) while B, paused, copies nothing; then A dies: B takes over
            // without round 2 and writes round 3; when A returns, each replica gets the other's round last.
            await servers.B.Server.PauseAsync();
            bPaused = true;
            await RoundAsync(client, 2);
            await WaitForAsync(first, 30, "the watch saw round 2 on A");
            NpgsqlConnection.ClearAllPools();
            await servers.A.Server.StopAsync("immediate");
            aDown = true;
            await servers.B.Server.ResumeAsync();
            bPaused = false;
            output.WriteLine("nemesis: paused B for round 2, stopped A (immediate), resumed B");
            await RoundAsync(client, 3);
            await WaitForAsync(first, 40, "the watch saw round 3 on B");
            var takenOnB = first.ToArray()[39].Resume!;

            await servers.A.Server.StartAgainAsync();
            aDown = false;
            await CaughtUpAsync(client);
            NpgsqlConnection.ClearAllPools();
            await servers.B.Server.StopAsync("immediate");
            bDown = true;
            output.WriteLine("nemesis: restarted A, both caught up, stopped B (immediate)");
            await RoundAsync(client, 4);

            // The first watch went on through both fail-overs: 50 changes, each entry once.
            var seen = await WaitForAsync(first, 50, "the watch saw round 4 on A");
            Assert.Equal(50, seen.Select(Identity).Distinct().Count());
            Assert.All(Actors, actor => Assert.Equal(5, seen.Count(c => c.Record.Actor.ActorId == actor)));

            // A second watch resumed from where the first was on B, now on A (whose journal holds the rounds in another
            // order): exactly what came after it, round 4. A bare position would have replayed round 3.
            var second = new List<RecordChange>();
            await foreach (var change in client.WatchAsync(Shard, takenOnB, "account", cancellationToken: stop.Token))
            {
                second.Add(change);
                if (second.Count == 10)
                {
                    break;
                }
            }

            Assert.Equal(seen.Skip(40).Select(Identity).Order(), second.Select(Identity).Order());
        }
        finally
        {
            await stop.CancelAsync();
            await watching.ContinueWith(_ => { }, TaskScheduler.Default);
            if (bPaused)
            {
                await servers.B.Server.ResumeAsync();
            }

            if (aDown)
            {
                await servers.A.Server.StartAgainAsync();
            }

            if (bDown)
            {
                await servers.B.Server.StartAgainAsync();
            }
        }
    }

    private static string Identity(RecordChange change) => $"{change.Record.Actor.ActorId}@{change.Stamp}";

    private static async Task RoundAsync(Pr2Client client, int round) =>
        await Task.WhenAll(Actors.Select(actor => Retrying.SendAsync(client,
            new Message(Guid.NewGuid(), "test", new ActorRef(Shard, actor), round == 0 ? MessageKind.Insert : MessageKind.Modify, $$"""{"round": {{round}}}"""))));

    private static Task CaughtUpAsync(Pr2Client client) =>
        Eventually.TrueAsync(async () =>
            (await client.GetStatusAsync()).Shards.Single(s => s.Shard == Shard).Replicas.All(r => r.Reachable && r.Behind == 0),
            TimeSpan.FromSeconds(60), "both replicas hold the same entries");

    private static async Task<RecordChange[]> WaitForAsync(ConcurrentQueue<RecordChange> changes, int count, string what)
    {
        await Eventually.TrueAsync(() => Task.FromResult(changes.Count >= count), TimeSpan.FromSeconds(60), what);
        return changes.ToArray();
    }
}
