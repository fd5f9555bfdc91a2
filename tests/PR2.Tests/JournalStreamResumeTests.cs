using PR2.Client;
using PR2.Tests.Infrastructure;
using PR2.Tests.Streams;
using Xunit.Abstractions;

namespace PR2.Tests;

/// <summary>
/// An explicit journal stream subscription (its state in grain storage) and a subscriber that keeps each entry with
/// its token: through the kill of a silo and a restart of the whole cluster, with writes all along, the subscriber ends
/// with every entry of the journal exactly once, in journal order.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class JournalStreamResumeTests(PostgresFixture postgres, ITestOutputHelper output)
{
    private const int Shard = 1;

    [Fact]
    public async Task An_explicit_subscriber_keeps_every_entry_once_in_order_through_a_silo_kill_and_a_cluster_restart()
    {
        var topology = postgres.CreateTopology("stream_resume", 0, Shard);
        var settings = new Dictionary<string, string?>(topology.Settings) { ["Pr2:Silo:ServiceId"] = "stream-resume-test" };
        var written = 0;
        await using (var cluster = await TestClusters.StartAsync(settings, silos: 2))
        {
            var watcher = cluster.Client.GetGrain<IStreamWatcherGrain>("watcher");
            await watcher.Subscribe(Shard);
            var client = new Pr2Client(cluster.Client);
            written += await WriteAsync(client, 0, 40);
            await WaitForAsync(cluster.Client, topology, written, "before the kill");

            // Kill (no graceful stop) a silo while writes go on: the one holding the watcher when it is not the first.
            var writing = WriteAsync(client, 40, 40);
            var silo = cluster.Silos[1];
            await cluster.KillSiloAsync(silo);
            output.WriteLine($"killed silo {silo.SiloAddress}");
            written += await writing;
            written += await WriteAsync(client, 80, 20);
            await WaitForAsync(cluster.Client, topology, written, "after the kill");
        }

        await using (var cluster = await TestClusters.StartAsync(settings))
        {
            written += await WriteAsync(new Pr2Client(cluster.Client), 100, 40);
            var seen = await WaitForAsync(cluster.Client, topology, written, "after the cluster restart");
            output.WriteLine($"kept {seen.Kept.Count}, dropped as already kept {seen.Dropped}, activations {seen.Activations}");
            Assert.True(seen.Activations >= 2, "the watcher was activated again after the restart (from its stored state)");
        }
    }

    // Sends count messages to 10 actors (inserts, then modifies), retrying retriable answers with the same MessageId.
    private static async Task<int> WriteAsync(Pr2Client client, int from, int count)
    {
        for (var n = from; n < from + count; n++)
        {
            await Retrying.SendAsync(client, new Message(Guid.NewGuid(), "test", new ActorRef(Shard, $"streamtest/{n % 10}"),
                n < 10 ? MessageKind.Insert : MessageKind.Modify, $$"""{"n": {{n}}}"""));
        }

        return count;
    }

    private static async Task<WatcherState> WaitForAsync(IClusterClient client, TestTopology topology, int written, string when)
    {
        var journal = await ReplicaContents.MessageIdsOfTypeAsync(topology.Database(Shard), "streamtest");
        Assert.Equal(written, journal.Count);
        WatcherState seen = new();
        await Eventually.TrueAsync(async () =>
        {
            seen = await client.GetGrain<IStreamWatcherGrain>("watcher").Seen();
            return seen.Kept.Count >= journal.Count;
        }, TimeSpan.FromSeconds(60), $"the watcher kept all {journal.Count} entries {when}");
        Assert.Equal(journal, seen.Kept);
        return seen;
    }
}
