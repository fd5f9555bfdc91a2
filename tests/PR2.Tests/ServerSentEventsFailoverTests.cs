using Npgsql;
using PR2.Client;
using PR2.Tests.Infrastructure;
using Xunit.Abstractions;

namespace PR2.Tests;

/// <summary>
/// An SSE client of <c>/v1/shards/1/changes</c> reads some changes and disconnects; the shard's primary server is killed
/// (pg_ctl stop -m immediate), writes go on on the other replica, and the HTTP silo is restarted. Reconnecting with
/// the last event id it saw, the client gets exactly the changes it lacks, in order: none missed, none repeated.
/// </summary>
public sealed class ServerSentEventsFailoverTests(TwoPostgresServers servers, ITestOutputHelper output) : IClassFixture<TwoPostgresServers>
{
    private const int Shard = 1;
    private const string Key = "sse-failover-key-0123456789";
    private static readonly string[] Actors = [.. Enumerable.Range(0, 5).Select(i => $"order/{i}")];

    [Fact]
    public async Task A_client_reconnecting_with_its_last_event_id_after_a_fail_over_and_a_silo_restart_misses_nothing()
    {
        var control = servers.B.CreateTopology("sse_failover", 0);
        var onA = servers.A.CreateTopology("sse_failover_a", Shard);
        var onB = servers.B.CreateTopology("sse_failover_b", Shard);
        var settings = new Dictionary<string, string?>(control.Settings)
        {
            [$"Pr2:Topology:Shards:{Shard}:Replicas:0"] = onA.Settings[$"Pr2:Topology:Shards:{Shard}:Replicas:0"],
            [$"Pr2:Topology:Shards:{Shard}:Replicas:1"] = onB.Settings[$"Pr2:Topology:Shards:{Shard}:Replicas:0"],
            ["Pr2:Http:ApiKeys:0:Name"] = "shop",
            ["Pr2:Http:ApiKeys:0:Key"] = Key,
            ["Pr2:Http:ApiKeys:0:Shards:0"] = "*",
        };
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var stopped = false;
        try
        {
            string lastEventId;
            await using (var silo = await HttpSilo.StartAsync(settings))
            {
                var client = new Pr2Client(silo.ClusterClient);
                await WriteRoundsAsync(client, 0, 4);
                using var http = silo.Client(Key);
                var first = await ServerSentEvents.ReadChangesAsync(http, "/v1/shards/1/changes?type=order&after=0", null, 20, deadline.Token);
                Assert.Equal(Expected(0, 4), first.Select(Describe));
                lastEventId = first[^1].EventId;

                await Eventually.TrueAsync(async () =>
                    (await client.GetStatusAsync()).Shards.Single(s => s.Shard == Shard).Replicas.All(r => r.Behind == 0),
                    TimeSpan.FromSeconds(30), "replica 1 caught up before the nemesis");
                NpgsqlConnection.ClearAllPools();
                await servers.A.Server.StopAsync("immediate");
                stopped = true;
                output.WriteLine("nemesis: stopped replica 0's server (immediate)");
                await WriteRoundsAsync(client, 4, 3);
            }

            output.WriteLine("restarting the HTTP silo");
            await using (var silo = await HttpSilo.StartAsync(settings))
            {
                var client = new Pr2Client(silo.ClusterClient);
                using var http = silo.Client(Key);
                var reading = ServerSentEvents.ReadChangesAsync(http, "/v1/shards/1/changes?type=order", lastEventId, 25, deadline.Token);
                await WriteRoundsAsync(client, 7, 2); // live, after the reconnect
                await servers.A.Server.StartAgainAsync();
                stopped = false;
                var rest = await reading;
                output.WriteLine($"resumed from {lastEventId}: {rest.Count} changes, positions {rest[0].Change["position"]}..{rest[^1].Change["position"]}");
                Assert.Equal(Expected(4, 5), rest.Select(Describe));
            }
        }
        finally
        {
            if (stopped)
            {
                await servers.A.Server.StartAgainAsync();
            }
        }
    }

    // Round r: one message per actor (insert in round 0), each actor's version r + 1.
    private static async Task WriteRoundsAsync(Pr2Client client, int from, int rounds)
    {
        for (var round = from; round < from + rounds; round++)
        {
            foreach (var actor in Actors)
            {
                await Retrying.SendAsync(client, new Message(Guid.NewGuid(), "test", new ActorRef(Shard, actor),
                    round == 0 ? MessageKind.Insert : MessageKind.Modify, $$"""{"round": {{round}}}"""));
            }
        }
    }

    private static IEnumerable<string> Expected(int fromRound, int rounds) =>
        Enumerable.Range(fromRound, rounds).SelectMany(round => Actors.Select(actor => $"{actor} v{round + 1} round {round}"));

    private static string Describe((System.Text.Json.Nodes.JsonNode Change, string EventId) e) =>
        $"{e.Change["record"]!["actor"]} v{e.Change["record"]!["version"]} round {e.Change["record"]!["state"]!["round"]}";
}
