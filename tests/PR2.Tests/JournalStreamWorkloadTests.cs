using System.Collections.Concurrent;
using Npgsql;
using PR2.Client;
using PR2.Tests.Infrastructure;
using PR2.Tests.Streams;
using Xunit.Abstractions;

namespace PR2.Tests;

/// <summary>
/// Issue 23's workload: 10,000 messages over 3 shards (30 actors each) while the primary server of every shard is
/// killed (pg_ctl stop -m immediate) and, later, a silo hosting a subscriber is killed, with writes going on. Each shard
/// has a <see cref="TokenKeepingSubscriberGrain"/> (implicit subscription) that stores its token every 100 entries and
/// resumes from it. Judged against every acknowledgement and each shard's journal: the subscriber keeps every entry
/// once, each origin's entries in origin order, each actor's in version order, and anything given twice is below the
/// token it had stored (it drops those).
/// </summary>
public sealed class JournalStreamWorkloadTests(TwoPostgresServers servers, ITestOutputHelper output) : IClassFixture<TwoPostgresServers>
{
    private const int Messages = 10_000;
    private const int ActorsPerShard = 30;
    private static readonly int[] Shards = [1, 2, 3];

    [Fact]
    public async Task Implicit_subscribers_keep_every_entry_of_three_shards_once_in_order_through_a_primary_kill_and_a_silo_kill()
    {
        var control = servers.B.CreateTopology("stream_bulk", 0);
        var onA = servers.A.CreateTopology("stream_bulk_a", Shards);
        var onB = servers.B.CreateTopology("stream_bulk_b", Shards);
        var settings = new Dictionary<string, string?>(control.Settings);
        foreach (var shard in Shards)
        {
            settings[$"Pr2:Topology:Shards:{shard}:Replicas:0"] = onA.Settings[$"Pr2:Topology:Shards:{shard}:Replicas:0"];
            settings[$"Pr2:Topology:Shards:{shard}:Replicas:1"] = onB.Settings[$"Pr2:Topology:Shards:{shard}:Replicas:0"];
        }

        await using var cluster = await TestClusters.StartAsync(settings, silos: 2);
        var client = new Pr2Client(cluster.Client);
        var victim = cluster.Silos[1];
        var onVictim = await PlaceASubscriberOnAsync(cluster.Client, victim.SiloAddress);
        output.WriteLine($"subscribers of shards {string.Join(",", onVictim)} are on the silo to be killed");

        // Messages per actor: 10,000 over 90 actors, sent in order per actor, a third per phase.
        var actors = Shards.SelectMany(s => Enumerable.Range(0, ActorsPerShard).Select(i => new ActorRef(s, $"bulk/{i}"))).ToList();
        var perActor = actors.Select((_, i) => Messages / actors.Count + (i < Messages % actors.Count ? 1 : 0)).ToList();
        var acked = new ConcurrentBag<WriteAck>();
        var primaryKilled = false;
        try
        {
            await WritePhaseAsync(client, actors, perActor, 0, acked);
            await Eventually.TrueAsync(async () => (await client.GetStatusAsync()).Shards.Where(s => Shards.Contains(s.Shard))
                .All(s => s.Replicas.All(r => r.Behind == 0)), TimeSpan.FromSeconds(60), "replica 1 of every shard caught up before the nemesis");
            NpgsqlConnection.ClearAllPools();
            await servers.A.Server.StopAsync("immediate");
            primaryKilled = true;
            output.WriteLine($"nemesis: stopped server A, replica 0 of every shard (immediate), after {acked.Count} acks");

            var before = acked.Count;
            var phase2 = WritePhaseAsync(client, actors, perActor, 1, acked);
            await Eventually.TrueAsync(() => Task.FromResult(acked.Count >= before + 1000 || phase2.IsCompleted),
                TimeSpan.FromSeconds(120), "1,000 writes acknowledged on the new primaries");
            await cluster.KillSiloAsync(victim);
            output.WriteLine($"nemesis: killed silo {victim.SiloAddress} after {acked.Count} acks");
            await phase2;

            var phase3 = WritePhaseAsync(client, actors, perActor, 2, acked);
            await servers.A.Server.StartAgainAsync();
            primaryKilled = false;
            output.WriteLine($"nemesis: restarted server A after {acked.Count} acks");
            await phase3;
        }
        finally
        {
            if (primaryKilled)
            {
                await servers.A.Server.StartAgainAsync();
            }
        }

        Assert.Equal(Messages, acked.Count);
        await Eventually.TrueAsync(async () => (await client.GetStatusAsync()).Shards.Where(s => Shards.Contains(s.Shard))
            .All(s => s.Replicas.All(r => r.Reachable && r.Behind == 0)), TimeSpan.FromSeconds(90), "both replicas of every shard hold the same entries");

        // Every acknowledged message is in a journal, and nothing else is.
        var journals = new Dictionary<int, Dictionary<Guid, JournalRow>>();
        foreach (var shard in Shards)
        {
            journals[shard] = await ReplicaContents.EntriesOfTypeAsync(onB.Database(shard), "bulk");
        }

        Assert.Equal(acked.Select(a => a.MessageId).Order(), journals.Values.SelectMany(j => j.Keys).Order());
        foreach (var shard in Shards)
        {
            var journal = journals[shard];
            Assert.Equal(actors.Select((a, i) => a.Shard == shard ? perActor[i] : 0).Sum(), journal.Count);
            var subscriber = cluster.Client.GetGrain<IBulkSubscriberGrain>(shard);
            SubscriberState seen = new();
            await Eventually.TrueAsync(async () => (seen = await subscriber.Seen()).Kept.Count >= journal.Count,
                TimeSpan.FromSeconds(120), $"shard {shard}'s subscriber kept all {journal.Count} entries");
            output.WriteLine($"shard {shard}: journal {journal.Count}, kept {seen.Kept.Count}, dropped below its token {seen.Dropped}, activations {seen.Activations}");

            Assert.Equal(0, seen.RepeatedAboveToken);
            Assert.Equal(journal.Keys.Order(), seen.Kept.Order());
            var kept = seen.Kept.Select(id => journal[id]).ToList();
            Assert.All(seen.KeptOrigins.GroupBy(o => o.Key), origin => Assert.Equal(origin.Select(o => o.Value).Order(), origin.Select(o => o.Value)));
            Assert.All(kept.GroupBy(e => e.Actor), actor => Assert.Equal(Enumerable.Range(1, actor.Count()).Select(v => (long)v), actor.Select(e => e.Version)));
            Assert.Equal(2, kept.Select(e => e.Origin).Distinct().Count());
            if (onVictim.Contains(shard))
            {
                Assert.True(seen.Activations >= 2, $"shard {shard}'s subscriber was activated again after its silo was killed");
            }
        }
    }

    // Sends the phase's share (a third) of each actor's messages, in order per actor, all actors at once.
    private static Task WritePhaseAsync(Pr2Client client, List<ActorRef> actors, List<int> perActor, int phase, ConcurrentBag<WriteAck> acked) =>
        Task.WhenAll(actors.Select(async (actor, i) =>
        {
            var from = perActor[i] * phase / 3;
            var to = perActor[i] * (phase + 1) / 3;
            for (var n = from; n < to; n++)
            {
                acked.Add(await Retrying.SendAsync(client, new Message(Guid.NewGuid(), "test", actor,
                    n == 0 ? MessageKind.Insert : MessageKind.Modify, $$"""{"n": {{n}}}""")));
            }
        }));

    // Activates the three subscribers until at least one runs on the given silo (placement is random); returns their shards.
    private static async Task<List<int>> PlaceASubscriberOnAsync(IClusterClient client, SiloAddress silo)
    {
        for (var attempt = 0; attempt < 30; attempt++)
        {
            var on = new List<int>();
            foreach (var shard in Shards)
            {
                if ((await client.GetGrain<IBulkSubscriberGrain>(shard).Silo()).Equals(silo))
                {
                    on.Add(shard);
                }
            }

            if (on.Count > 0)
            {
                return on;
            }

            await Task.WhenAll(Shards.Select(s => client.GetGrain<IBulkSubscriberGrain>(s).Leave()));
        }

        throw new InvalidOperationException($"no subscriber was placed on {silo} in 30 attempts");
    }
}
