using Orleans.Runtime;
using PR2.Client;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// Two silos whose membership lives in the control shard's PostgreSQL database (the ADO.NET clustering
/// provider running our own SQL): when one silo stops, the cluster keeps accepting writes.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class AdoNetClusterTests(PostgresFixture postgres)
{
    [Fact]
    public async Task A_two_silo_cluster_on_postgres_membership_keeps_accepting_writes_after_one_silo_stops()
    {
        var topology = postgres.CreateTopology("adonet", 0, 1, 2);
        await using var cluster = await TestClusters.StartWithAdoNetClusteringAsync(topology.Settings, silos: 2);
        var client = new Pr2Client(cluster.Client);

        Assert.Equal(2, await topology.ScalarAsync(0, "select count(*) from pr2_membership where status = $1", (int)SiloStatus.Active));
        // pr2 status and /v1/status list the silos as membership records them.
        Assert.Equal(["Active", "Active"], (await client.GetStatusAsync()).Silos!.Select(s => s.Status));

        var actors = Enumerable.Range(0, 40).Select(i => new ActorRef(1 + (i % 2), $"cart/{Guid.NewGuid():N}")).ToList();
        var inserted = await Task.WhenAll(actors.Select(actor => SendWithRetryAsync(client, actor, MessageKind.Insert)));
        Assert.All(inserted, ack => Assert.Equal(1, ack.Version));

        // Stop the first silo: grains and gateway it hosted move to the other one.
        await cluster.StopSiloAsync(cluster.Silos[0]);
        await Eventually.TrueAsync(
            async () => await topology.ScalarAsync(0, "select count(*) from pr2_membership where status = $1", (int)SiloStatus.Active) == 1,
            TimeSpan.FromSeconds(30), "membership table shows one active silo");

        var modified = await Task.WhenAll(actors.Select(actor => SendWithRetryAsync(client, actor, MessageKind.Modify)));
        Assert.All(modified, ack => Assert.Equal(2, ack.Version));

        // Exactly one journal entry per acknowledged message, none lost or doubled by the retries.
        foreach (var shard in new[] { 1, 2 })
        {
            var expected = inserted.Concat(modified).Count(a => a.Actor.Shard == shard);
            Assert.Equal(expected, await topology.JournalCountAsync(shard));
        }
    }

    // A call in flight while a silo leaves may fail with a transient Orleans error; the same MessageId
    // is then sent again (safe by idempotence) until a deadline.
    private static async Task<WriteAck> SendWithRetryAsync(Pr2Client client, ActorRef actor, MessageKind kind)
    {
        var message = new Message(Guid.NewGuid(), "test", actor, kind, """{"items": 1}""");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            try
            {
                return await client.SendAsync(message);
            }
            catch (Exception e) when (DateTime.UtcNow < deadline && e is SiloUnavailableException or OrleansMessageRejectionException or TimeoutException
                                      || e is Pr2Exception { IsRetriable: true })
            {
                await Task.Delay(200);
            }
        }
    }
}
