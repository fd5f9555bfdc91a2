using System.Collections.Concurrent;
using System.Diagnostics;
using Npgsql;
using PR2.Client;
using PR2.Grains.Agents;
using PR2.Tests.Infrastructure;
using Xunit.Abstractions;

namespace PR2.Tests;

/// <summary>
/// A replica added to a running shard (<c>pr2 replicas add</c>): recorded joining, filled by anti-entropy while writers
/// write, admitted once caught up, and from then counted toward the ack policy. What each client was told holds (no write
/// fails, no false Duplicate, no order reversal, no strong read older than an acknowledgement), every acknowledged entry
/// is on every replica once, the records views agree, and the added replica carries the quorum when an old one stops
/// answering. Adding it is refused clearly where it cannot be done, and safe to retry.
/// </summary>
public sealed class ReplicaAddTests(TwoPostgresServers servers, ITestOutputHelper output) : IClassFixture<TwoPostgresServers>
{
    private const int Shard = 1;
    private const string NewKey = "Pr2:Connections:added-c";

    [Fact]
    public async Task A_replica_added_under_load_catches_up_serves_and_carries_the_quorum_with_nothing_lost()
    {
        var (settings, a, b) = servers.TwoReplicaShard("add", Shard, "Quorum");
        settings[NewKey] = Fresh(servers.A, "add_c");
        await using var added = NpgsqlDataSource.Create(settings[NewKey]!);
        await using var cluster = await TestClusters.StartAsync(settings, silos: 2);
        var client = new Pr2Client(cluster.Client);

        // Entries for the new replica to catch up on before writers start.
        for (var batch = 0; batch < 30; batch++)
        {
            await client.SendBatchAsync(Shard, [.. Enumerable.Range(0, 100).Select(i =>
                new Message(Guid.NewGuid(), "fill", new ActorRef(Shard, $"fill/{batch}-{i}"), MessageKind.Insert, $$"""{"n": {{i}}}"""))]);
        }

        var acked = new ConcurrentBag<WriteAck>();
        var history = new ClientHistory();
        var problems = new ConcurrentBag<string>();
        using var stop = new CancellationTokenSource();
        var writers = Enumerable.Range(0, 12).Select(w => SteadyWriters.WriteAsync(client, Shard, w, acked, history, problems, stop.Token)).ToList();
        var reader = SteadyWriters.ReadStronglyAsync(client, Shard, history, stop.Token);
        await SteadyWriters.WaitForAcksAsync(acked, 150);

        var progress = new RecordedProgress();
        var clock = Stopwatch.StartNew();
        var entry = await client.AddReplicaAsync(Shard, NewKey, progress);
        output.WriteLine($"added in {clock.Elapsed.TotalMilliseconds:0} ms; progress reports {progress.Reports.Count}, last {progress.Reports.LastOrDefault()}");
        Assert.Equal(3, entry.Replicas.Count);
        Assert.Equal(NewKey, entry.Connections![2]);
        Assert.Null(entry.Joining);
        Assert.NotEmpty(progress.Reports);
        Assert.True(progress.Reports.Max(p => p.Rows) >= 3000, "progress counted the entries the replica took");

        // A member now: with replica 1 not answering, a quorum (2 of 3) is the primary and the added replica. Without
        // it, every write would be refused ("only 1 of the 2 replicas the ack policy needs").
        await SteadyWriters.WaitForAcksAsync(acked, acked.Count + 150);
        await servers.B.Server.PauseAsync();
        try
        {
            var during = acked.Count;
            await SteadyWriters.WaitForAcksAsync(acked, during + 150);
        }
        finally
        {
            await servers.B.Server.ResumeAsync();
        }

        await SteadyWriters.WaitForAcksAsync(acked, acked.Count + 150);
        await stop.CancelAsync();
        await Task.WhenAll(writers);
        await reader;
        output.WriteLine($"acknowledged {acked.Count}, strong reads {history.StrongReads}");
        foreach (var problem in problems.Concat(history.FalseDuplicates).Concat(history.OrderReversals.Select(r => r.Problem)).Concat(history.StaleStrongReads))
        {
            output.WriteLine("problem: " + problem);
        }

        Assert.Empty(problems);
        Assert.Empty(history.FalseDuplicates);
        Assert.Empty(history.OrderReversals);
        Assert.Empty(history.StaleStrongReads);

        var replicas = new[] { a, b, added };
        await Eventually.TrueAsync(async () =>
            (await client.GetStatusAsync()).Shards.Single(s => s.Shard == Shard).Replicas is { Count: 3 } all && all.All(r => r.Reachable && r.Behind == 0 && !r.Joining),
            TimeSpan.FromSeconds(60), "the three replicas hold the same entries, none joining");
        for (var replica = 0; replica < 3; replica++)
        {
            await client.CatchUpAsync(RecordsProjector.AgentName, Shard, replica);
        }

        var ids = await Task.WhenAll(replicas.Select(ReplicaContents.MessageIdsAsync));
        foreach (var held in ids)
        {
            Assert.Equal(0, acked.Count(ack => !held.Contains(ack.MessageId)));
            Assert.Equal(held.Count, held.Distinct().Count());
            Assert.Equal(ids[0].Order(), held.Order());
        }

        var records = await ReplicaContents.RecordsAsync(a);
        Assert.Equal(records, await ReplicaContents.RecordsAsync(b));
        Assert.Equal(records, await ReplicaContents.RecordsAsync(added));
    }

    [Fact]
    public async Task Adding_a_replica_is_refused_clearly_survives_a_stall_and_a_restart_and_is_safe_to_retry()
    {
        var control = servers.A.CreateTopology("add_refused", 0);
        var shardOne = servers.A.CreateTopology("add_refused_one", Shard);
        var settings = new Dictionary<string, string?>(control.Settings)
        {
            [$"Pr2:Topology:Shards:{Shard}:Replicas:0"] = shardOne.Settings[$"Pr2:Topology:Shards:{Shard}:Replicas:0"],
            [$"Pr2:Topology:Shards:{Shard}:AckPolicy"] = "Quorum",
            [NewKey] = Fresh(servers.B, "add_stalled"),
            ["Pr2:Connections:same"] = shardOne.Settings[$"Pr2:Topology:Shards:{Shard}:Replicas:0"],
            ["Pr2:Connections:control"] = control.Settings["Pr2:Topology:Shards:0:Replicas:0"],
            // Replica 0 under another address: the same database.
            ["Pr2:Connections:alias"] = new NpgsqlConnectionStringBuilder(shardOne.Settings[$"Pr2:Topology:Shards:{Shard}:Replicas:0"]) { Host = "localhost" }.ConnectionString,
        };

        // The new replica's database exists and is held still: its writer head locked, it takes no entries.
        await Migrations.MigrateAsync(new Dictionary<string, string?> { [$"Pr2:Topology:Shards:{Shard}:Replicas:0"] = settings[NewKey] });
        await using var added = NpgsqlDataSource.Create(settings[NewKey]!);
        var headLock = await HeadLock.TakeAsync(added);
        var acked = new List<Guid>();
        await using (var cluster = await TestClusters.StartAsync(settings))
        {
            var client = new Pr2Client(cluster.Client);
            acked.Add((await Retrying.SendAsync(client, new Message(Guid.NewGuid(), "test", new ActorRef(Shard, "account/1"), MessageKind.Insert, "{}"))).MessageId);

            async Task<Pr2Exception> RefusedAsync(int shard, string key)
            {
                var refused = await Assert.ThrowsAsync<Pr2Exception>(() => client.AddReplicaAsync(shard, key));
                output.WriteLine($"{key}: {refused.Code} {refused.Message}");
                return refused;
            }

            Assert.Equal(ErrorCode.BadMessage, (await RefusedAsync(0, NewKey)).Code);
            var secret = await RefusedAsync(Shard, "Host=127.0.0.1;Password=hunter2");
            Assert.Equal(ErrorCode.BadMessage, secret.Code);
            Assert.DoesNotContain("hunter2", secret.Message, StringComparison.Ordinal);
            var unset = await RefusedAsync(Shard, "Pr2:Connections:nowhere");
            Assert.Equal((ErrorCode.BadMessage, true), (unset.Code, unset.Message.Contains("Pr2:Connections:nowhere", StringComparison.Ordinal)));
            var same = await RefusedAsync(Shard, "Pr2:Connections:same");
            Assert.Equal((ErrorCode.BadMessage, true), (same.Code, same.Message.Contains("a replica of shard 1 already", StringComparison.Ordinal)));
            var alias = await RefusedAsync(Shard, "Pr2:Connections:alias");
            Assert.Equal((ErrorCode.BadMessage, true), (alias.Code, alias.Message.Contains("names replica 0 of shard 1 under another address", StringComparison.Ordinal)));
            var other = await RefusedAsync(Shard, "Pr2:Connections:control");
            Assert.Equal((ErrorCode.BadMessage, true), (other.Code, other.Message.Contains("another shard", StringComparison.Ordinal)));
            Assert.Equal(ErrorCode.UnknownShard, (await RefusedAsync(9, NewKey)).Code);
            Assert.Single((await client.GetShardsAsync()).Single(s => s.Shard == Shard).Replicas);

            // Recorded, but it takes nothing: the wait ends with a retriable error and the replica stays joining.
            var stalled = await Assert.ThrowsAsync<Pr2Exception>(() => client.AddReplicaAsync(Shard, NewKey, stallTimeout: TimeSpan.FromSeconds(3)));
            output.WriteLine(stalled.Message);
            Assert.True(stalled.IsRetriable, stalled.Message);
            Assert.Contains("stays joining", stalled.Message, StringComparison.Ordinal);
            Assert.Equal([1], (await client.GetShardsAsync()).Single(s => s.Shard == Shard).Joining!);
        }

        // Started again while it joins: the new writer opens with the replica it reads in the directory, and counts it
        // toward nothing yet, so writes go on with the primary alone (a quorum of the one member).
        await using (var cluster = await TestClusters.StartAsync(settings))
        {
            var client = new Pr2Client(cluster.Client);
            for (var i = 2; i <= 6; i++)
            {
                acked.Add((await Retrying.SendAsync(client, new Message(Guid.NewGuid(), "test", new ActorRef(Shard, "account/1"), MessageKind.Modify, $$"""{"n": {{i}}}"""))).MessageId);
            }

            var status = (await client.GetStatusAsync()).Shards.Single(s => s.Shard == Shard);
            Assert.Equal([false, true], status.Replicas.Select(r => r.Joining));

            // Let go, the same command again follows it to the end.
            await headLock.DisposeAsync();
            var entry = await client.AddReplicaAsync(Shard, NewKey);
            Assert.Equal((2, (IReadOnlyList<int>?)null), (entry.Replicas.Count, entry.Joining));
            Assert.Equal(entry.Replicas, (await client.AddReplicaAsync(Shard, NewKey)).Replicas);
        }

        // Started again from the same configuration (one replica configured): the directory keeps the added one, a member,
        // and with Quorum of two an acknowledgement means it holds the entry.
        await using (var cluster = await TestClusters.StartAsync(settings))
        {
            var client = new Pr2Client(cluster.Client);
            var ack = await Retrying.SendAsync(client, new Message(Guid.NewGuid(), "test", new ActorRef(Shard, "account/1"), MessageKind.Modify, """{"after": "restart"}"""));
            Assert.Equal(7, ack.Version);
            Assert.Contains(ack.MessageId, await ReplicaContents.MessageIdsAsync(added));
            var shard = (await client.GetShardsAsync()).Single(s => s.Shard == Shard);
            Assert.Equal((2, (IReadOnlyList<int>?)null), (shard.Replicas.Count, shard.Joining));
            var ids = await ReplicaContents.MessageIdsAsync(added);
            Assert.All(acked, id => Assert.Contains(id, ids));
        }
    }

    [Fact]
    public async Task A_joining_replica_that_does_not_answer_stops_no_fail_over_and_makes_no_refusal_retriable()
    {
        // Quorum of three members (two copies): replica 0 on server A, replicas 1 and 2 (and shard 0) on server B; the
        // joining replica on server B too, reached through a proxy the test cuts.
        await using var proxy = new TcpProxy(servers.B.Server.Port);
        var joiningDatabase = Fresh(servers.B, "add_failover_joining");
        var control = servers.B.CreateTopology("add_failover", 0);
        var copies = new[] { servers.A.CreateTopology("add_failover_a", Shard), servers.B.CreateTopology("add_failover_b", Shard), servers.B.CreateTopology("add_failover_c", Shard) };
        var settings = new Dictionary<string, string?>(control.Settings)
        {
            [$"Pr2:Topology:Shards:{Shard}:AckPolicy"] = "Quorum",
            [NewKey] = new NpgsqlConnectionStringBuilder(joiningDatabase) { Port = proxy.Port, Timeout = 2, CommandTimeout = 2 }.ConnectionString,
        };
        for (var i = 0; i < copies.Length; i++)
        {
            settings[$"Pr2:Topology:Shards:{Shard}:Replicas:{i}"] = copies[i].Settings[$"Pr2:Topology:Shards:{Shard}:Replicas:0"];
        }

        // The joining replica takes nothing (its writer head locked), then does not answer at all (cut off).
        await Migrations.MigrateAsync(new Dictionary<string, string?> { [$"Pr2:Topology:Shards:{Shard}:Replicas:0"] = joiningDatabase });
        await using var joining = NpgsqlDataSource.Create(joiningDatabase);
        await using var headLock = await HeadLock.TakeAsync(joining);
        await using var cluster = await TestClusters.StartAsync(settings);
        var client = new Pr2Client(cluster.Client);
        await Retrying.SendAsync(client, new Message(Guid.NewGuid(), "test", new ActorRef(Shard, "account/1"), MessageKind.Insert, "{}"));
        await Assert.ThrowsAsync<Pr2Exception>(() => client.AddReplicaAsync(Shard, NewKey, stallTimeout: TimeSpan.FromSeconds(3)));
        proxy.BlackHole();

        // The primary's server stops answering: the writer fails over to the two members left, which a takeover must
        // reach (two of the three members), whatever the joining replica does.
        await servers.A.Server.PauseAsync();
        try
        {
            var ack = await Retrying.SendAsync(client, new Message(Guid.NewGuid(), "test", new ActorRef(Shard, "account/1"), MessageKind.Modify, """{"during": "pause"}"""));
            Assert.Equal(2, ack.Version);
        }
        finally
        {
            await servers.A.Server.ResumeAsync();
        }

        // Once the old primary is settled, a refusal is final: the joining replica never held a writer's entries, so
        // not reaching it leaves nothing in doubt.
        Pr2Exception? last = null;
        await Eventually.TrueAsync(async () =>
        {
            last = await Assert.ThrowsAsync<Pr2Exception>(() => client.SendAsync(new Message(Guid.NewGuid(), "test", new ActorRef(Shard, "account/1"), MessageKind.Modify,
                """{"stale": true}""", ExpectedVersion: 1)));
            return last.Code == ErrorCode.VersionMismatch;
        }, TimeSpan.FromSeconds(30), "a stale write is refused as a version mismatch, finally");
        output.WriteLine(last!.Message);
    }

    [Fact]
    public async Task A_member_removed_under_load_counts_no_more_nothing_is_lost_and_a_restart_keeps_it_removed()
    {
        // All three replicas must hold an entry: replica 0 on server A, replicas 1 and 2 (and shard 0) on server B.
        var control = servers.B.CreateTopology("remove", 0);
        var copies = new[] { servers.A.CreateTopology("remove_a", Shard), servers.B.CreateTopology("remove_b", Shard), servers.B.CreateTopology("remove_c", Shard) };
        var settings = new Dictionary<string, string?>(control.Settings) { [$"Pr2:Topology:Shards:{Shard}:AckPolicy"] = "All" };
        for (var i = 0; i < copies.Length; i++)
        {
            settings[$"Pr2:Topology:Shards:{Shard}:Replicas:{i}"] = copies[i].Settings[$"Pr2:Topology:Shards:{Shard}:Replicas:0"];
        }

        var (a, b, removed) = (copies[0].Database(Shard), copies[1].Database(Shard), copies[2].Database(Shard));
        var acked = new ConcurrentBag<WriteAck>();
        var history = new ClientHistory();
        var problems = new ConcurrentBag<string>();
        WriteAck afterRestart;
        await using (var cluster = await TestClusters.StartAsync(settings, silos: 2))
        {
            var client = new Pr2Client(cluster.Client);
            await Retrying.SendAsync(client, new Message(Guid.NewGuid(), "test", new ActorRef(Shard, "account/first"), MessageKind.Insert, "{}"));
            Assert.Equal(ErrorCode.BadMessage, (await Assert.ThrowsAsync<Pr2Exception>(() => client.RemoveReplicaAsync(Shard, 0))).Code); // the primary
            Assert.Equal(ErrorCode.BadMessage, (await Assert.ThrowsAsync<Pr2Exception>(() => client.RemoveReplicaAsync(Shard, 3))).Code);
            Assert.Equal(ErrorCode.BadMessage, (await Assert.ThrowsAsync<Pr2Exception>(() => client.RemoveReplicaAsync(0, 1))).Code);

            using var stop = new CancellationTokenSource();
            var writers = Enumerable.Range(0, 12).Select(w => SteadyWriters.WriteAsync(client, Shard, w, acked, history, problems, stop.Token)).ToList();
            var reader = SteadyWriters.ReadStronglyAsync(client, Shard, history, stop.Token);
            await SteadyWriters.WaitForAcksAsync(acked, 150);
            var entry = await client.RemoveReplicaAsync(Shard, 2);
            Assert.Equal([2], entry.Removed!);
            Assert.Equal(entry.Removed, (await client.RemoveReplicaAsync(Shard, 2)).Removed); // again: the same

            // Counted no more: with its writer head locked it takes nothing, and every write is still acknowledged by the
            // two members left (All of three would refuse every one).
            await using (var stall = await HeadLock.TakeAsync(removed))
            {
                await SteadyWriters.WaitForAcksAsync(acked, acked.Count + 150);
            }

            await stop.CancelAsync();
            await Task.WhenAll(writers);
            await reader;
            Assert.Empty(problems);
            Assert.Empty(history.FalseDuplicates);
            Assert.Empty(history.OrderReversals);
            Assert.Empty(history.StaleStrongReads);
            var shard = (await client.GetStatusAsync()).Shards.Single(s => s.Shard == Shard);
            Assert.Equal([0, 1], shard.Replicas.Select(r => r.Index));
        }

        // Started again from the same configuration (three replicas configured): the directory keeps it removed.
        await using (var cluster = await TestClusters.StartAsync(settings))
        {
            var client = new Pr2Client(cluster.Client);
            await using var stall = await HeadLock.TakeAsync(removed);
            afterRestart = await Retrying.SendAsync(client, new Message(Guid.NewGuid(), "test", new ActorRef(Shard, "account/after-restart"), MessageKind.Insert, "{}"));
            acked.Add(afterRestart);
            await Eventually.TrueAsync(async () =>
                (await client.GetStatusAsync()).Shards.Single(s => s.Shard == Shard).Replicas is { Count: 2 } all && all.All(r => r.Reachable && r.Behind == 0),
                TimeSpan.FromSeconds(60), "the two members hold the same entries");
            await client.CatchUpAsync(RecordsProjector.AgentName, Shard, 0);
            await client.CatchUpAsync(RecordsProjector.AgentName, Shard, 1);
        }

        var (idsA, idsB) = (await ReplicaContents.MessageIdsAsync(a), await ReplicaContents.MessageIdsAsync(b));
        Assert.Equal(0, acked.Count(ack => !idsA.Contains(ack.MessageId) || !idsB.Contains(ack.MessageId)));
        Assert.Equal(idsA.Order(), idsB.Order());
        Assert.Equal(await ReplicaContents.RecordsAsync(a), await ReplicaContents.RecordsAsync(b));
        // Nothing fills it any more (neither the gate nor anti-entropy, which made the two members equal meanwhile).
        Assert.DoesNotContain(afterRestart.MessageId, await ReplicaContents.MessageIdsAsync(removed));
    }

    [Fact]
    public async Task A_replica_that_may_hold_the_only_copy_of_acknowledged_entries_is_not_removed_until_it_answers()
    {
        // Primary ack policy: replica 0 on server A (the first primary), replica 1 (and shard 0) on server B.
        var control = servers.B.CreateTopology("remove_only_copy", 0);
        var onA = servers.A.CreateTopology("remove_only_copy_a", Shard);
        var onB = servers.B.CreateTopology("remove_only_copy_b", Shard);
        var settings = new Dictionary<string, string?>(control.Settings)
        {
            [$"Pr2:Topology:Shards:{Shard}:Replicas:0"] = onA.Settings[$"Pr2:Topology:Shards:{Shard}:Replicas:0"],
            [$"Pr2:Topology:Shards:{Shard}:Replicas:1"] = onB.Settings[$"Pr2:Topology:Shards:{Shard}:Replicas:0"],
        };
        await using var cluster = await TestClusters.StartAsync(settings);
        var client = new Pr2Client(cluster.Client);
        await Retrying.SendAsync(client, new Message(Guid.NewGuid(), "test", new ActorRef(Shard, "account/0"), MessageKind.Insert, "{}"));

        // Acknowledged on replica 0 alone: replica 1 takes nothing while its writer head is locked.
        var headLock = await HeadLock.TakeAsync(onB.Database(Shard));
        var only = new List<Guid>();
        for (var i = 1; i <= 5; i++)
        {
            only.Add((await client.SendAsync(Shard, $"account/{i}", MessageKind.Insert, "{}")).MessageId);
        }

        // Replica 0's server stops answering; the writer fails over to replica 1 without its entries.
        await servers.A.Server.PauseAsync();
        try
        {
            await headLock.DisposeAsync();
            await Retrying.SendAsync(client, new Message(Guid.NewGuid(), "test", new ActorRef(Shard, "account/after"), MessageKind.Insert, "{}"));
            var refused = await Assert.ThrowsAsync<Pr2Exception>(() => client.RemoveReplicaAsync(Shard, 0));
            output.WriteLine(refused.Message);
            Assert.True(refused.IsRetriable, refused.Message);
            Assert.Contains("may hold acknowledged entries", refused.Message, StringComparison.Ordinal);
            Assert.Null((await client.GetShardsAsync()).Single(s => s.Shard == Shard).Removed);
        }
        finally
        {
            await servers.A.Server.ResumeAsync();
        }

        // Back, its entries come over before it goes: none of the acknowledged ones is lost with it.
        await Eventually.TrueAsync(async () =>
        {
            try
            {
                return (await client.RemoveReplicaAsync(Shard, 0)).Removed is [0];
            }
            catch (Pr2Exception e) when (e.IsRetriable)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(30), "replica 0 removed once it answers");
        var held = await ReplicaContents.MessageIdsAsync(onB.Database(Shard));
        Assert.All(only, id => Assert.Contains(id, held));
    }

    // A database of its own on the server, as a connection string (idle connections closed soon: the servers are shared).
    private static string Fresh(PostgresFixture server, string prefix) =>
        new NpgsqlConnectionStringBuilder(server.Server.ConnectionString($"{prefix}_{Guid.NewGuid():N}"[..Math.Min(prefix.Length + 9, 50)]))
        {
            ConnectionIdleLifetime = 15,
            ConnectionPruningInterval = 5,
        }.ConnectionString;
}
