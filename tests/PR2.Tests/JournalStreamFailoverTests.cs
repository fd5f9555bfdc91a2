using Npgsql;
using PR2.Client;
using PR2.Tests.Infrastructure;
using PR2.Tests.Streams;
using Xunit.Abstractions;

namespace PR2.Tests;

/// <summary>
/// A journal stream through a change of primary: shard 1's primary server is killed (pg_ctl stop -m immediate) in the
/// middle of a workload on two silos; the stream's reader moves to the new primary and goes on from what its tokens
/// say was delivered. The subscriber is judged against what the clients were told: every acknowledged entry is
/// delivered, each actor's entries in version order, and an entry given twice only when the token the subscriber
/// stored before it already includes it (so it can drop it).
/// </summary>
public sealed class JournalStreamFailoverTests(TwoPostgresServers servers, ITestOutputHelper output) : IClassFixture<TwoPostgresServers>
{
    private const int Shard = 1;

    [Fact]
    public async Task A_subscriber_gets_every_acknowledged_entry_in_order_through_a_primary_kill()
    {
        var control = servers.B.CreateTopology("stream_failover", 0);
        var onA = servers.A.CreateTopology("stream_failover_a", Shard);
        var onB = servers.B.CreateTopology("stream_failover_b", Shard);
        var settings = new Dictionary<string, string?>(control.Settings)
        {
            [$"Pr2:Topology:Shards:{Shard}:Replicas:0"] = onA.Settings[$"Pr2:Topology:Shards:{Shard}:Replicas:0"],
            [$"Pr2:Topology:Shards:{Shard}:Replicas:1"] = onB.Settings[$"Pr2:Topology:Shards:{Shard}:Replicas:0"],
        };
        await using var cluster = await TestClusters.StartAsync(settings, silos: 2);
        var client = new Pr2Client(cluster.Client);
        var actors = Enumerable.Range(0, 20).Select(i => $"streamtest/{i}").ToList();
        var acked = new List<WriteAck>();
        var killed = false;
        try
        {
            for (var round = 0; round < 8; round++)
            {
                if (round == 3)
                {
                    await Eventually.TrueAsync(async () =>
                        (await client.GetStatusAsync()).Shards.Single(s => s.Shard == Shard).Replicas.All(r => r.Behind == 0),
                        TimeSpan.FromSeconds(30), "replica 1 caught up before the nemesis");
                    NpgsqlConnection.ClearAllPools();
                    await servers.A.Server.StopAsync("immediate");
                    killed = true;
                    output.WriteLine("nemesis: stopped replica 0's server (immediate)");
                }

                var r = round;
                acked.AddRange(await Task.WhenAll(actors.Select(actor => Retrying.SendAsync(client,
                    new Message(Guid.NewGuid(), "test", new ActorRef(Shard, actor), r == 0 ? MessageKind.Insert : MessageKind.Modify, $$"""{"round": {{r}}}""")))));
            }

            await servers.A.Server.StartAgainAsync();
            killed = false;
            output.WriteLine("nemesis: restarted replica 0's server");
            await Eventually.TrueAsync(async () =>
                (await client.GetStatusAsync()).Shards.Single(s => s.Shard == Shard).Replicas.All(r => r.Reachable && r.Behind == 0),
                TimeSpan.FromSeconds(60), "both replicas hold the same entries");

            var journal = await ReplicaContents.MessageIdsOfTypeAsync(onB.Database(Shard), "streamtest");
            Assert.All(acked, ack => Assert.Contains(ack.MessageId, journal));
            IReadOnlyList<(JournalEntry Entry, string Token)> received = [];
            await Eventually.TrueAsync(async () =>
            {
                received = await cluster.Client.GetGrain<IStreamRecorderGrain>(Shard).Received();
                return journal.All(received.Select(r => r.Entry.MessageId).ToHashSet().Contains);
            }, TimeSpan.FromSeconds(30), "the subscriber got every entry the replicas hold");

            // What the subscriber keeps: each delivery its stored token does not include. Those are each entry once.
            var kept = new List<JournalEntry>();
            JournalStreamToken? stored = null;
            var dropped = 0;
            foreach (var (entry, text) in received)
            {
                var token = JournalStreamToken.Parse(text);
                if (stored is not null && stored.Includes(token))
                {
                    dropped++;
                    continue;
                }

                kept.Add(entry);
                stored = token;
            }

            output.WriteLine($"acked {acked.Count}, journal {journal.Count}, delivered {received.Count}, dropped by token {dropped}, " +
                $"origins delivered {received.Select(r => r.Entry.OriginReplica).Distinct().Count()}");
            Assert.Equal(kept.Count, kept.Select(e => e.MessageId).Distinct().Count());
            Assert.Equal(journal.Order(), kept.Select(e => e.MessageId).Order());
            Assert.All(kept.GroupBy(e => e.Actor), actor => Assert.Equal(
                Enumerable.Range(1, actor.Count()).Select(v => (long)v), actor.Select(e => e.Version)));
            Assert.True(received.Select(r => r.Entry.OriginReplica).Distinct().Count() == 2, "entries written on both replicas were delivered");
        }
        finally
        {
            if (killed)
            {
                await servers.A.Server.StartAgainAsync();
            }
        }
    }
}
