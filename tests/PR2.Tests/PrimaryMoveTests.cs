using System.Collections.Concurrent;
using System.Diagnostics;
using PR2.Client;
using PR2.Grains.Agents;
using PR2.Tests.Infrastructure;
using Xunit.Abstractions;

namespace PR2.Tests;

/// <summary>
/// A planned move of a shard's primary (<c>pr2 replicas promote</c>): while writers keep writing, on two silos, the
/// primary goes from one server to the other and back and over again. No write is refused or fails, even retriably
/// (they wait for the switch); every acknowledged write is on both replicas once; the history each writer was told
/// holds (no false Duplicate, versions only ever increasing, no strong read older than an acknowledgement before it);
/// the replicas converge to the same records; and the primary stays where it was moved when the cluster starts again.
/// </summary>
public sealed class PrimaryMoveTests(TwoPostgresServers servers, ITestOutputHelper output) : IClassFixture<TwoPostgresServers>
{
    private const int Shard = 1;

    [Fact]
    public async Task Moving_the_primary_under_load_fails_no_write_loses_nothing_and_the_primary_stays_where_it_was_moved()
    {
        var (settings, a, b) = Topology("move");
        var acked = new ConcurrentBag<WriteAck>();
        var history = new ClientHistory();
        var problems = new ConcurrentBag<string>();
        await using (var cluster = await TestClusters.StartAsync(settings, silos: 2))
        {
            var client = new Pr2Client(cluster.Client);
            using var stop = new CancellationTokenSource();
            var writers = Enumerable.Range(0, 12).Select(w => SteadyWriters.WriteAsync(client, Shard, w, acked, history, problems, stop.Token)).ToList();
            var reader = SteadyWriters.ReadStronglyAsync(client, Shard, history, stop.Token);
            var moves = new List<string>();
            foreach (var target in new[] { 1, 0, 1 })
            {
                await SteadyWriters.WaitForAcksAsync(acked, acked.Count + 150);
                var clock = Stopwatch.StartNew();
                var primary = await client.MovePrimaryAsync(Shard, target);
                moves.Add($"to {target} in {clock.Elapsed.TotalMilliseconds:0} ms");
                Assert.Equal(target, primary);
                Assert.Equal(target, (await client.GetStatusAsync()).Shards.Single(s => s.Shard == Shard).Replicas.Single(r => r.Primary).Index);
            }

            await SteadyWriters.WaitForAcksAsync(acked, acked.Count + 150);
            await stop.CancelAsync();
            await Task.WhenAll(writers);
            await reader;
            output.WriteLine($"moves {string.Join(", ", moves)}; acknowledged {acked.Count}, strong reads {history.StrongReads}");
            foreach (var problem in problems.Concat(history.FalseDuplicates).Concat(history.OrderReversals.Select(r => r.Problem)).Concat(history.StaleStrongReads))
            {
                output.WriteLine("problem: " + problem);
            }

            Assert.Empty(problems);
            Assert.Empty(history.FalseDuplicates);
            Assert.Empty(history.OrderReversals);
            Assert.Empty(history.StaleStrongReads);

            await Eventually.TrueAsync(async () =>
                (await client.GetStatusAsync()).Shards.Single(s => s.Shard == Shard).Replicas.All(r => r.Reachable && r.Behind == 0),
                TimeSpan.FromSeconds(60), "both replicas hold the same entries");
            await client.CatchUpAsync(RecordsProjector.AgentName, Shard, replica: 0);
            await client.CatchUpAsync(RecordsProjector.AgentName, Shard, replica: 1);
            var (idsA, idsB) = (await ReplicaContents.MessageIdsAsync(a), await ReplicaContents.MessageIdsAsync(b));
            Assert.Equal(0, acked.Count(ack => !idsA.Contains(ack.MessageId) || !idsB.Contains(ack.MessageId)));
            Assert.Equal(idsA.Count, idsA.Distinct().Count());
            Assert.Equal(idsA.Order(), idsB.Order());
            Assert.Equal(await ReplicaContents.RecordsAsync(a), await ReplicaContents.RecordsAsync(b));
            await Eventually.TrueAsync(async () => (await client.GetShardsAsync()).Single(s => s.Shard == Shard).Primary == 1,
                TimeSpan.FromSeconds(30), "the directory records replica 1 as the primary");
        }

        // Both replicas hold the same entries now: a new writer, on a cluster started again, keeps the one chosen last.
        await using var again = await TestClusters.StartAsync(settings);
        var restarted = new Pr2Client(again.Client);
        var ack = await Retrying.SendAsync(restarted, new Message(Guid.NewGuid(), "test", new ActorRef(Shard, "account/after-restart"), MessageKind.Insert, "{}"));
        Assert.Equal(1, (await restarted.GetStatusAsync()).Shards.Single(s => s.Shard == Shard).Replicas.Single(r => r.Primary).Index);
        Assert.Contains(ack.MessageId, await ReplicaContents.MessageIdsAsync(b));
    }

    [Fact]
    public async Task A_move_to_a_replica_that_cannot_take_over_is_refused_retriably_and_the_primary_and_writes_stay()
    {
        var (settings, a, b) = Topology("refused");
        await using var cluster = await TestClusters.StartAsync(settings);
        var client = new Pr2Client(cluster.Client);
        await Retrying.SendAsync(client, new Message(Guid.NewGuid(), "test", new ActorRef(Shard, "account/1"), MessageKind.Insert, "{}"));

        // As an actor reads them: the replica the writer opened on is a primary, the one it only fenced is not.
        var account = new ActorRef(Shard, "account/1");
        Assert.True((await PR2.Grains.Storage.JournalStore.LatestVersionOnPrimaryAsync(a, account)).Primary);
        Assert.False((await PR2.Grains.Storage.JournalStore.LatestVersionOnPrimaryAsync(b, account)).Primary);

        var none = await Assert.ThrowsAsync<Pr2Exception>(() => client.MovePrimaryAsync(Shard, 2));
        Assert.Equal(ErrorCode.BadMessage, none.Code);
        Assert.Equal(0, await client.MovePrimaryAsync(Shard, 0));

        await servers.B.Server.PauseAsync();
        try
        {
            var refused = await Assert.ThrowsAsync<Pr2Exception>(() => client.MovePrimaryAsync(Shard, 1));
            output.WriteLine(refused.Message);
            Assert.True(refused.IsRetriable, refused.Message);
            Assert.Contains("the primary is replica 0", refused.Message, StringComparison.Ordinal);
            var ack = await client.SendAsync(Shard, "account/1", MessageKind.Modify, """{"after": "refused move"}""");
            Assert.Equal(2, ack.Version);
        }
        finally
        {
            await servers.B.Server.ResumeAsync();
        }

        Assert.Equal(1, await client.MovePrimaryAsync(Shard, 1));
    }

    [Fact]
    public async Task After_a_move_an_actor_on_any_silo_reads_and_judges_its_latest_version_while_the_old_primary_lags()
    {
        var (settings, a, _) = Topology("lagging");
        // Three silos: actors live on all of them, most on a silo that neither runs the writer nor reads the journal stream.
        await using var cluster = await TestClusters.StartAsync(settings, silos: 3);
        var client = new Pr2Client(cluster.Client);
        var actors = Enumerable.Range(0, 24).Select(i => $"account/{i}").ToList();
        foreach (var actor in actors)
        {
            await Retrying.SendAsync(client, new Message(Guid.NewGuid(), "test", new ActorRef(Shard, actor), MessageKind.Insert, """{"v": 1}"""));
            Assert.Equal(1, (await client.GetRecordAsync(Shard, actor)).Version); // activated, holding version 1
        }

        await Eventually.TrueAsync(async () =>
            (await client.GetStatusAsync()).Shards.Single(s => s.Shard == Shard).Replicas.All(r => r.Reachable && r.Behind == 0),
            TimeSpan.FromSeconds(30), "both replicas hold the inserts");
        Assert.Equal(1, await client.MovePrimaryAsync(Shard, 1));

        // The old primary answers but takes nothing more (its writer head locked): it lags behind the new one.
        await using var lag = await HeadLock.TakeAsync(a);
        var acks = await Task.WhenAll(actors.Select(actor => client.SendAsync(Shard, actor, MessageKind.Modify, """{"v": 2}""")));
        Assert.All(acks, ack => Assert.Equal(2, ack.Version));
        var stale = new List<string>();
        foreach (var actor in actors)
        {
            var read = await client.GetRecordAsync(Shard, actor);
            if (read.Version != 2)
            {
                stale.Add($"{actor} read at version {read.Version}");
            }
        }

        Assert.Empty(stale);
        // Judged against the new primary too: version 2 is expected, and it is there.
        var next = await Task.WhenAll(actors.Select(actor => client.SendAsync(new Message(Guid.NewGuid(), "test", new ActorRef(Shard, actor), MessageKind.Modify,
            """{"v": 3}""", ExpectedVersion: 2))));
        Assert.All(next, ack => Assert.Equal(3, ack.Version));
    }

    [Fact]
    public async Task A_former_primary_that_returns_after_a_fail_over_is_fenced_and_no_longer_reads_as_primary()
    {
        var (settings, a, b) = Topology("returned");
        await using var cluster = await TestClusters.StartAsync(settings);
        var client = new Pr2Client(cluster.Client);
        await Retrying.SendAsync(client, new Message(Guid.NewGuid(), "test", new ActorRef(Shard, "account/1"), MessageKind.Insert, "{}"));
        Assert.True(await ReadsAsPrimaryAsync(a));

        // Paused, replica 0 cannot be fenced by the takeover that moves the writer to replica 1.
        await servers.A.Server.PauseAsync();
        try
        {
            await Retrying.SendAsync(client, new Message(Guid.NewGuid(), "test", new ActorRef(Shard, "account/1"), MessageKind.Modify, """{"after": "pause"}"""));
            Assert.True(await ReadsAsPrimaryAsync(b));
        }
        finally
        {
            await servers.A.Server.ResumeAsync();
        }

        // Back, it must stop saying it is a primary, or actors on other silos would read it as one.
        await Eventually.TrueAsync(async () => !await ReadsAsPrimaryAsync(a), TimeSpan.FromSeconds(10), "the returned former primary was fenced");
        Assert.True(await ReadsAsPrimaryAsync(b));
    }

    private static async Task<bool> ReadsAsPrimaryAsync(Npgsql.NpgsqlDataSource replica)
    {
        await using var command = replica.CreateCommand("select primary_term = epoch from pr2_writer_head");
        return (bool)(await command.ExecuteScalarAsync())!;
    }

    // Shard 1: replica 0 on server A (the first primary), replica 1 on server B; shard 0 on server B.
    private (Dictionary<string, string?> Settings, Npgsql.NpgsqlDataSource A, Npgsql.NpgsqlDataSource B) Topology(string name)
    {
        var control = servers.B.CreateTopology(name, 0);
        var onA = servers.A.CreateTopology($"{name}_a", Shard);
        var onB = servers.B.CreateTopology($"{name}_b", Shard);
        var settings = new Dictionary<string, string?>(control.Settings)
        {
            [$"Pr2:Topology:Shards:{Shard}:Replicas:0"] = onA.Settings[$"Pr2:Topology:Shards:{Shard}:Replicas:0"],
            [$"Pr2:Topology:Shards:{Shard}:Replicas:1"] = onB.Settings[$"Pr2:Topology:Shards:{Shard}:Replicas:0"],
        };
        return (settings, onA.Database(Shard), onB.Database(Shard));
    }
}
