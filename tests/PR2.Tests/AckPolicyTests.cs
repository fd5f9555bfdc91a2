using Npgsql;
using PR2.Client;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// Ack policies: with <c>All</c> an acknowledged entry is already on every replica; with <c>Quorum</c>
/// over three replicas, losing one server keeps writes acknowledged on the other two, while <c>All</c>
/// then refuses to acknowledge, with a clear, retriable error.
/// </summary>
public sealed class AckPolicyTests(TwoPostgresServers servers) : IClassFixture<TwoPostgresServers>
{
    private readonly PostgresFixture _serverA = servers.A;
    private readonly PostgresFixture _serverB = servers.B;

    [Fact]
    public async Task With_ack_policy_all_every_acknowledged_entry_is_already_on_every_replica()
    {
        var (settings, replicas) = Topology("all", ("All", 1));
        await using var cluster = await TestClusters.StartAsync(settings);
        var client = new Pr2Client(cluster.Client);
        for (var i = 0; i < 40; i++)
        {
            var ack = await client.SendAsync(1, $"order/{i % 5}", i < 5 ? MessageKind.Insert : MessageKind.Modify, $$"""{"i": {{i}}}""");
            foreach (var replica in replicas[1])
            {
                Assert.True(await HoldsAsync(replica, ack.MessageId), $"entry {i} acknowledged before it was on every replica");
            }
        }
    }

    [Fact]
    public async Task With_three_replicas_quorum_survives_losing_a_server_and_all_refuses_to_acknowledge()
    {
        var (settings, replicas) = Topology("quorum", ("Quorum", 1), ("All", 2));
        await using var cluster = await TestClusters.StartAsync(settings);
        var client = new Pr2Client(cluster.Client);
        await client.SendAsync(1, "order/q", MessageKind.Insert, "{}");
        await client.SendAsync(2, "order/a", MessageKind.Insert, "{}");

        NpgsqlConnection.ClearAllPools();
        await _serverA.Server.StopAsync("immediate");
        try
        {
            for (var i = 0; i < 10; i++)
            {
                var ack = await Retrying.SendAsync(client, new Message(Guid.NewGuid(), "test", new ActorRef(1, "order/q"), MessageKind.Modify, $$"""{"i": {{i}}}"""));
                Assert.True(await HoldsAsync(replicas[1][1], ack.MessageId) && await HoldsAsync(replicas[1][2], ack.MessageId),
                    "a quorum acknowledgement before both surviving replicas held the entry");
            }

            var started = DateTime.UtcNow;
            var refused = await Assert.ThrowsAsync<Pr2Exception>(() => client.SendAsync(2, "order/a", MessageKind.Modify, """{"x": 1}"""));
            Assert.Equal(ErrorCode.ShardUnavailable, refused.Code);
            Assert.Contains("only 2 of the 3 replicas", refused.Message, StringComparison.Ordinal);
            Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(20), $"refusal took {DateTime.UtcNow - started}");
        }
        finally
        {
            // The servers are shared by this class's tests: bring server A back for the others.
            await _serverA.Server.StartAgainAsync();
        }
    }

    // Replica 0 on server A, replicas 1 and 2 on server B; shard 0 on server B.
    private (Dictionary<string, string?> Settings, Dictionary<int, NpgsqlDataSource[]> Replicas) Topology(string prefix, params (string Policy, int Shard)[] shards)
    {
        var settings = new Dictionary<string, string?>(_serverB.CreateTopology(prefix, 0).Settings);
        var replicas = new Dictionary<int, NpgsqlDataSource[]>();
        foreach (var (policy, shard) in shards)
        {
            var copies = new[] { _serverA.CreateTopology($"{prefix}_a", shard), _serverB.CreateTopology($"{prefix}_b", shard), _serverB.CreateTopology($"{prefix}_c", shard) };
            var count = policy == "All" && shards.Length == 1 ? 2 : 3;
            for (var i = 0; i < count; i++)
            {
                settings[$"Pr2:Topology:Shards:{shard}:Replicas:{i}"] = copies[i].Settings[$"Pr2:Topology:Shards:{shard}:Replicas:0"];
            }

            settings[$"Pr2:Topology:Shards:{shard}:AckPolicy"] = policy;
            replicas[shard] = [.. copies.Take(count).Select(c => c.Database(shard))];
        }

        return (settings, replicas);
    }

    private static async Task<bool> HoldsAsync(NpgsqlDataSource replica, Guid messageId) => await ReplicaContents.CountAsync(replica, messageId) == 1;
}
