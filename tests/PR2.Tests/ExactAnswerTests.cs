using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Orleans.Core.Internal;
using PR2.Client;
using PR2.Grains.Storage;
using PR2.Grains.Writing;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// Every answer means exactly what it says, under the faults that used to make answers lie: a refusal is given only
/// when nothing was and nothing ever will be written (not while an append of that MessageId is still in flight on a
/// paused server), an actor never refuses against a record older than its journal, <c>Duplicate</c> means an earlier
/// call was accepted (never this call's own retry), and a retry never gets an acknowledgement its ack policy does
/// not hold for, also from a writer activation that never saw the earlier attempt. Replicas live on two real servers;
/// the faults are SIGSTOP, a held row lock and a writer grain that moves.
/// </summary>
public sealed class ExactAnswerTests(TwoPostgresServers servers) : IClassFixture<TwoPostgresServers>
{
    private const int Shard = 1;
    private readonly PostgresFixture _serverA = servers.A;
    private readonly PostgresFixture _serverB = servers.B;

    [Fact]
    public async Task A_refusal_is_never_given_while_an_earlier_append_may_still_commit_and_a_stale_actor_never_refuses_a_correct_write()
    {
        var (settings, replicas) = Topology("in_doubt", "Primary", copies: 2);
        settings["Pr2:Write:CallTimeoutSeconds"] = "10"; // room for the fail-over inside one call
        await using var cluster = await TestClusters.StartAsync(settings);
        var client = new Pr2Client(cluster.Client);
        const string actor = "order/x";
        const string other = "order/z";
        var insert = await client.SendAsync(Shard, actor, MessageKind.Insert, """{"v": 1}""");
        var otherInsert = await client.SendAsync(Shard, other, MessageKind.Insert, """{"v": 1}""");
        await Eventually.TrueAsync(async () => await HoldsAsync(replicas[1], insert.MessageId) && await HoldsAsync(replicas[1], otherInsert.MessageId),
            TimeSpan.FromSeconds(30), "replica 1 has the inserts");

        // Replica 1 stops: versions 2..4 are acknowledged on replica 0 alone (Primary policy).
        await _serverB.Server.PauseAsync();
        var message = new Message(Guid.NewGuid(), "test", new ActorRef(Shard, actor), MessageKind.Modify, """{"v": 5}""", ExpectedVersion: 4);
        var answers = new List<string>();
        try
        {
            for (var v = 2; v <= 4; v++)
            {
                await client.SendAsync(Shard, actor, MessageKind.Modify, $$"""{"v": {{v}}}""");
                await client.SendAsync(Shard, other, MessageKind.Modify, $$"""{"v": {{v}}}""");
            }

            // Version 5 is in flight on replica 0 (waiting for the head's lock) when its server stops and replica 1 returns:
            // the writer fails over to replica 1, which is behind (version 1), while the append may still commit on 0.
            await using (var hold = await HeadLock.TakeAsync(replicas[0]))
            {
                var inFlight = client.SendAsync(message);
                await hold.WaitForWaiterAsync();
                await _serverA.Server.PauseAsync();
                await _serverB.Server.ResumeAsync();

                var first = await Record.ExceptionAsync(() => inFlight);
                answers.Add(Describe(first));
                Assert.True(first is Pr2Exception { IsRetriable: true }, $"the call got a final answer while its append was in flight: {Describe(first)}");
                var again = await Record.ExceptionAsync(() => client.SendAsync(message));
                answers.Add(Describe(again));
                Assert.True(again is Pr2Exception { IsRetriable: true }, $"a retry got a final answer while the first append was in flight: {Describe(again)}");

                // The other actor starts afresh now and reads replica 1 (the primary now, behind): it holds version 1.
                await cluster.Client.GetGrain<IActorGrain>(Shard, other, null).AsReference<IGrainManagementExtension>().DeactivateOnIdle();
                await Eventually.TrueAsync(async () => (await client.GetRecordAsync(Shard, other)).Version == 1, TimeSpan.FromSeconds(10),
                    "a new activation of the other actor reads version 1 from replica 1");

                await _serverA.Server.ResumeAsync();
                await hold.ReleaseAsync(); // the append in flight goes on, and commits on replica 0
            }
        }
        finally
        {
            await _serverA.Server.ResumeAsync();
            await _serverB.Server.ResumeAsync();
        }

        // Retried until the answer is final, it is the truth: acknowledged, version 5, on every replica once converged.
        var ack = await Retrying.SendAsync(client, message, e => answers.Add(Describe(e)));
        Assert.True(ack.Version == 5, $"acknowledged at version {ack.Version}; answers: {string.Join(" | ", answers)}");
        await Eventually.TrueAsync(async () => await HoldsAsync(replicas[0], message.MessageId) && await HoldsAsync(replicas[1], message.MessageId),
            TimeSpan.FromSeconds(30), "both replicas hold the acknowledged entry");

        // The actor held version 1 (read from replica 1 while it was behind): it must judge by the journal now.
        var current = (await client.ReadRecordAsync(Shard, actor, ReadConsistency.Strong)).Record.Version;
        Assert.Equal(5, current);
        var next = await client.SendAsync(Shard, actor, MessageKind.Modify, """{"v": 6}""", expectedVersion: current);
        Assert.Equal(6, next.Version);

        // The other actor's activation still holds version 1, but its journal holds 2..4 now: a write expecting 4 is right.
        await Eventually.TrueAsync(async () => (await client.ReadRecordAsync(Shard, other, ReadConsistency.Strong)).Record.Version == 4,
            TimeSpan.FromSeconds(30), "the other actor's entries reach the primary");
        var otherNext = await Record.ExceptionAsync(() => client.SendAsync(Shard, other, MessageKind.Modify, """{"v": 5}""", expectedVersion: 4));
        Assert.True(otherNext is null, $"a correct write was refused by an actor holding an old record: {Describe(otherNext)}");
    }

    [Fact]
    public async Task A_refusal_judged_before_the_writer_gathers_what_an_earlier_primary_acknowledged_is_judged_again_against_it()
    {
        var (settings, replicas) = Topology("regather", "Primary", copies: 2);
        settings["Pr2:Write:CallTimeoutSeconds"] = "10";
        await using var cluster = await TestClusters.StartAsync(settings);
        var client = new Pr2Client(cluster.Client);
        const string actor = "order/regather";
        var insert = await client.SendAsync(Shard, actor, MessageKind.Insert, """{"v": 1}""");
        await Eventually.TrueAsync(() => HoldsAsync(replicas[1], insert.MessageId), TimeSpan.FromSeconds(30), "replica 1 has the insert");

        // Versions 2..4 are acknowledged on replica 0 alone (Primary policy); then replica 0 stops, and a write to another
        // actor fails the writer over to replica 1, which holds version 1. Nothing is in flight anywhere.
        try
        {
            await _serverB.Server.PauseAsync();
            for (var v = 2; v <= 4; v++)
            {
                await client.SendAsync(Shard, actor, MessageKind.Modify, $$"""{"v": {{v}}}""");
            }

            await _serverA.Server.PauseAsync();
            await _serverB.Server.ResumeAsync();
            await Retrying.SendAsync(client, new Message(Guid.NewGuid(), "test", new ActorRef(Shard, "order/elsewhere"), MessageKind.Insert, "{}"));
        }
        finally
        {
            await _serverA.Server.ResumeAsync();
            await _serverB.Server.ResumeAsync();
        }

        // Replica 0 answers again, not yet gathered into the new primary by the writer (anti-entropy may copy it first).
        // An actor that read version 1 on the new primary asks the writer before refusing: the writer gathers replica 0,
        // and a message not found is no reason to refuse while the actor's journal moved on past what it judged.
        var writer = cluster.Client.GetGrain<IShardWriterGrain>(Shard);
        Exception? stale;
        for (var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30); ; await Task.Delay(100))
        {
            // Not final while replica 0 is not yet fenced and gathered (it may still be starting to answer again).
            stale = await Record.ExceptionAsync(() => writer.FindAccepted(Guid.NewGuid(), [1], new ActorRef(Shard, actor), judgedVersion: 1));
            if (stale is not Pr2Exception { Code: ErrorCode.ShardUnavailable } || DateTime.UtcNow > deadline)
            {
                break;
            }
        }

        Assert.True(stale is Pr2Exception { Code: ErrorCode.StaleActor }, $"a refusal judged at version 1 after the gather: {Describe(stale)}");
        Assert.Null(await writer.FindAccepted(Guid.NewGuid(), [1], new ActorRef(Shard, actor), judgedVersion: 4));

        // Through the actor: a new activation reads its journal where the writer's primary is and judges there.
        await cluster.Client.GetGrain<IActorGrain>(Shard, actor, null).AsReference<IGrainManagementExtension>().DeactivateOnIdle();
        var message = new Message(Guid.NewGuid(), "test", new ActorRef(Shard, actor), MessageKind.Modify, """{"v": 5}""", ExpectedVersion: 4);
        var answers = new List<string>();
        var sent = await Record.ExceptionAsync(async () => answers.Add($"acknowledged at version {(await Retrying.SendAsync(client, message, e => answers.Add(Describe(e)))).Version}"));
        Assert.True(sent is null && answers[^1] == "acknowledged at version 5", $"answers: {string.Join(" | ", answers)}; final: {Describe(sent)}");
    }

    [Fact]
    public async Task A_batch_in_flight_on_a_lost_primary_gets_no_final_answer_while_it_may_still_commit_and_then_the_true_one()
    {
        var (settings, replicas) = Topology("batch_doubt", "Primary", copies: 2);
        settings["Pr2:Write:CallTimeoutSeconds"] = "10";
        await using var cluster = await TestClusters.StartAsync(settings);
        var client = new Pr2Client(cluster.Client);
        const string actor = "order/batched";
        var insert = await client.SendAsync(Shard, actor, MessageKind.Insert, """{"v": 1}""");
        await Eventually.TrueAsync(() => HoldsAsync(replicas[1], insert.MessageId), TimeSpan.FromSeconds(30), "replica 1 has the insert");

        // Version 2 is acknowledged on replica 0 alone; a batch expecting it is in flight there when its server stops and
        // replica 1 (at version 1) takes over: judged there, the batch would be refused (VersionMismatch) though it may
        // still commit on replica 0.
        await _serverB.Server.PauseAsync();
        Message[] batch =
        [
            new(Guid.NewGuid(), "test", new ActorRef(Shard, actor), MessageKind.Modify, """{"v": 3}""", ExpectedVersion: 2),
            new(Guid.NewGuid(), "test", new ActorRef(Shard, "order/batched-new"), MessageKind.Insert, """{"v": 1}"""),
        ];
        var answers = new List<string>();
        try
        {
            await client.SendAsync(Shard, actor, MessageKind.Modify, """{"v": 2}""");
            await using var hold = await HeadLock.TakeAsync(replicas[0]);
            var inFlight = client.SendBatchAsync(Shard, batch);
            await hold.WaitForWaiterAsync();
            await _serverA.Server.PauseAsync();
            await _serverB.Server.ResumeAsync();

            // The call in flight, then the same batch sent again once that one has answered.
            foreach (var call in new Func<Task<BatchAck>>[] { () => inFlight, () => client.SendBatchAsync(Shard, batch) })
            {
                var answer = await Record.ExceptionAsync(call);
                answers.Add(Describe(answer));
                Assert.True(answer is Pr2Exception { IsRetriable: true }, $"a final answer while the batch was in flight: {string.Join(" | ", answers)}");
            }

            await _serverA.Server.ResumeAsync();
            await hold.ReleaseAsync(); // the batch in flight commits on replica 0
        }
        finally
        {
            await _serverA.Server.ResumeAsync();
            await _serverB.Server.ResumeAsync();
        }

        // Sent again until the answer is final, it is the truth: the batch, acknowledged whole, on both replicas.
        var ack = await Retrying.CallAsync(() => client.SendBatchAsync(Shard, batch));
        Assert.True(ack.Acks[0].Version == 3, $"acknowledged at version {ack.Acks[0].Version}; answers: {string.Join(" | ", answers)}");
        foreach (var replica in replicas)
        {
            await Eventually.TrueAsync(async () => await HoldsAsync(replica, batch[0].MessageId) && await HoldsAsync(replica, batch[1].MessageId),
                TimeSpan.FromSeconds(30), "both replicas hold the whole batch");
        }
    }

    [Fact]
    public async Task A_new_writer_activation_gives_no_final_refusal_while_a_replica_it_could_not_reach_may_hold_the_message()
    {
        var (settings, replicas) = Topology("older_writer", "Primary", copies: 2);
        settings["Pr2:Write:CallTimeoutSeconds"] = "10";
        await using var cluster = await TestClusters.StartAsync(settings);
        var client = new Pr2Client(cluster.Client);
        const string actor = "order/older";
        var insert = await client.SendAsync(Shard, actor, MessageKind.Insert, """{"v": 1}""");
        await Eventually.TrueAsync(() => HoldsAsync(replicas[1], insert.MessageId), TimeSpan.FromSeconds(30), "replica 1 has the insert");

        // Version 2 is acknowledged on replica 0 alone. A message and a batch expecting it are in flight there when its
        // server stops and replica 1 (at version 1) takes over. Then the writer grain itself moves (its silo died, say):
        // the new activation never saw them in flight, and replica 0 does not answer when it takes over. Judged on
        // replica 1, both would be refused (VersionMismatch), though both may still commit on replica 0.
        await _serverB.Server.PauseAsync();
        var message = new Message(Guid.NewGuid(), "test", new ActorRef(Shard, actor), MessageKind.Modify, """{"v": 3}""", ExpectedVersion: 2);
        Message[] batch =
        [
            new(Guid.NewGuid(), "test", new ActorRef(Shard, actor), MessageKind.Modify, """{"v": 4}""", ExpectedVersion: 3),
            new(Guid.NewGuid(), "test", new ActorRef(Shard, "order/older-new"), MessageKind.Insert, """{"v": 1}"""),
        ];
        var answers = new List<string>();
        try
        {
            await client.SendAsync(Shard, actor, MessageKind.Modify, """{"v": 2}""");
            await using var hold = await HeadLock.TakeAsync(replicas[0]);
            var inFlight = client.SendAsync(message);
            await hold.WaitForWaiterAsync();
            await _serverA.Server.PauseAsync();
            await _serverB.Server.ResumeAsync();
            answers.Add(Describe(await Record.ExceptionAsync(() => inFlight)));

            await cluster.Client.GetGrain<IShardWriterGrain>(Shard).AsReference<IGrainManagementExtension>().DeactivateOnIdle();
            await cluster.Client.GetGrain<IActorGrain>(Shard, actor, null).AsReference<IGrainManagementExtension>().DeactivateOnIdle();
            foreach (var call in new Func<Task>[] { () => client.SendAsync(message), () => client.SendBatchAsync(Shard, batch) })
            {
                var answer = await Record.ExceptionAsync(call);
                answers.Add(Describe(answer));
                Assert.True(answer is Pr2Exception { IsRetriable: true }, $"a final answer while replica 0 may still hold the message: {string.Join(" | ", answers)}");
            }

            await _serverA.Server.ResumeAsync();
            await hold.ReleaseAsync(); // the message in flight commits on replica 0
        }
        finally
        {
            await _serverA.Server.ResumeAsync();
            await _serverB.Server.ResumeAsync();
        }

        // Sent again until the answers are final, they are the truth: the message at version 3, then the batch after it.
        var ack = await Retrying.SendAsync(client, message, e => answers.Add(Describe(e)));
        Assert.True(ack.Version == 3, $"acknowledged at version {ack.Version}; answers: {string.Join(" | ", answers)}");
        var batchAck = await Retrying.CallAsync(() => client.SendBatchAsync(Shard, batch));
        Assert.Equal(4, batchAck.Acks[0].Version);
        foreach (var replica in replicas)
        {
            await Eventually.TrueAsync(async () => await HoldsAsync(replica, message.MessageId) && await HoldsAsync(replica, batch[0].MessageId),
                TimeSpan.FromSeconds(30), "both replicas hold the message and the batch");
        }
    }

    [Fact]
    public async Task A_write_committed_without_its_quorum_on_a_primary_that_is_then_lost_is_never_refused_while_that_replica_is_away()
    {
        var (settings, replicas) = Topology("unacked_quorum", "Quorum", copies: 3);
        settings["Pr2:Write:CallTimeoutSeconds"] = "10";
        await using var cluster = await TestClusters.StartAsync(settings);
        var client = new Pr2Client(cluster.Client);
        const string actor = "order/q";
        var insert = await client.SendAsync(Shard, actor, MessageKind.Insert, """{"v": 1}""");
        await Eventually.TrueAsync(async () => await HoldsAsync(replicas[1], insert.MessageId) && await HoldsAsync(replicas[2], insert.MessageId),
            TimeSpan.FromSeconds(30), "replicas 1 and 2 have the insert");

        // Version 2 commits on replica 0 while replicas 1 and 2 (server B) are away: not acknowledged (no quorum), so its
        // caller will retry. Then replica 0 is lost and the writer fails over to 1, where another write takes version 2.
        var message = new Message(Guid.NewGuid(), "test", new ActorRef(Shard, actor), MessageKind.Modify, """{"v": 2}""", ExpectedVersion: 1);
        var answers = new List<string>();
        await _serverB.Server.PauseAsync();
        try
        {
            var first = await Record.ExceptionAsync(() => client.SendAsync(message));
            answers.Add(Describe(first));
            Assert.True(first is Pr2Exception { IsRetriable: true }, $"acknowledged without its quorum: {Describe(first)}");
            Assert.True(await HoldsAsync(replicas[0], message.MessageId), "the write committed on replica 0");
            await _serverA.Server.PauseAsync();
            await _serverB.Server.ResumeAsync();
            var other = await Retrying.SendAsync(client, new Message(Guid.NewGuid(), "test", new ActorRef(Shard, actor), MessageKind.Modify, """{"v": 20}"""));
            Assert.Equal(2, other.Version);

            // Its retry, judged on replica 1 (at version 2 by another write), would be refused (VersionMismatch) though the
            // write is committed on replica 0 and reaches the others by anti-entropy once it is back.
            var retry = await Record.ExceptionAsync(() => client.SendAsync(message));
            answers.Add(Describe(retry));
            Assert.True(retry is Pr2Exception { IsRetriable: true }, $"a final answer while replica 0 holds the write: {string.Join(" | ", answers)}");
        }
        finally
        {
            await _serverA.Server.ResumeAsync();
            await _serverB.Server.ResumeAsync();
        }

        // Once replica 0 is back, the retry's answer is the truth: the write was accepted (a duplicate of its first call).
        var ack = await Retrying.SendAsync(client, message, e => answers.Add(Describe(e)));
        Assert.True(ack.MessageId == message.MessageId, string.Join(" | ", answers));
        foreach (var replica in replicas)
        {
            await Eventually.TrueAsync(() => HoldsAsync(replica, message.MessageId), TimeSpan.FromSeconds(30), "every replica holds the write");
        }
    }

    [Fact]
    public async Task A_strong_read_never_misses_an_acknowledged_write_after_the_primary_holding_it_is_lost()
    {
        var (settings, replicas) = Topology("strong_after_loss", "Primary", copies: 2);
        await using var cluster = await TestClusters.StartAsync(settings);
        var client = new Pr2Client(cluster.Client);
        const string actor = "order/r";
        var insert = await client.SendAsync(Shard, actor, MessageKind.Insert, """{"v": 1}""");
        await Eventually.TrueAsync(() => HoldsAsync(replicas[1], insert.MessageId), TimeSpan.FromSeconds(30), "replica 1 has the insert");

        // Versions 2 and 3 are acknowledged on replica 0 alone; then its server dies and the writer fails over to 1.
        await _serverB.Server.PauseAsync();
        try
        {
            await client.SendAsync(Shard, actor, MessageKind.Modify, """{"v": 2}""");
            await client.SendAsync(Shard, actor, MessageKind.Modify, """{"v": 3}""");
            NpgsqlConnection.ClearAllPools();
            await _serverA.Server.StopAsync("immediate");
        }
        finally
        {
            await _serverB.Server.ResumeAsync();
        }

        try
        {
            await Retrying.SendAsync(client, new Message(Guid.NewGuid(), "test", new ActorRef(Shard, "order/after"), MessageKind.Insert, "{}"));
            var read = await Record.ExceptionAsync(() => client.ReadRecordAsync(Shard, actor, ReadConsistency.Strong));
            Assert.True(read is Pr2Exception { Code: ErrorCode.ShardUnavailable },
                $"a strong read while the only replica holding acknowledged versions 2..3 is down got {Describe(read)}");
        }
        finally
        {
            await _serverA.Server.StartAgainAsync();
        }

        // Once replica 0 is back and its entries copied, the strong read has the last acknowledged version.
        await Eventually.TrueAsync(async () =>
        {
            try
            {
                return (await client.ReadRecordAsync(Shard, actor, ReadConsistency.Strong)).Record.Version == 3;
            }
            catch (Pr2Exception e) when (e.IsRetriable)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(60), "a strong read returns version 3");
    }

    [Fact]
    public async Task A_retry_of_a_write_committed_without_its_quorum_is_not_acknowledged_until_the_quorum_holds_it()
    {
        var (settings, replicas) = Topology("quorum_retry", "Quorum", copies: 3);
        await using var cluster = await TestClusters.StartAsync(settings);
        var client = new Pr2Client(cluster.Client);
        await client.SendAsync(Shard, "order/c", MessageKind.Insert, "{}");
        await client.SendAsync(Shard, "order/m", MessageKind.Insert, "{}");
        var cancel = new Message(Guid.NewGuid(), "test", new ActorRef(Shard, "order/c"), MessageKind.Cancel, "{}");
        var modify = new Message(Guid.NewGuid(), "test", new ActorRef(Shard, "order/m"), MessageKind.Modify, """{"n": 1}""", ExpectedVersion: 1);

        // Replicas 1 and 2 (server B) stop: the writes commit on replica 0 but get no quorum.
        await _serverB.Server.PauseAsync();
        try
        {
            foreach (var message in new[] { cancel, modify })
            {
                for (var attempt = 0; attempt < 3; attempt++)
                {
                    var answer = await Record.ExceptionAsync(() => client.SendAsync(message));
                    Assert.True(answer is Pr2Exception { Code: ErrorCode.ShardUnavailable },
                        $"{message.Kind} attempt {attempt} without a quorum got {Describe(answer)}");
                }

                Assert.True(await HoldsAsync(replicas[0], message.MessageId), "committed on the primary");
            }
        }
        finally
        {
            await _serverB.Server.ResumeAsync();
        }

        foreach (var message in new[] { cancel, modify })
        {
            var ack = await Retrying.SendAsync(client, message);
            var holders = 0;
            foreach (var replica in replicas)
            {
                holders += await HoldsAsync(replica, message.MessageId) ? 1 : 0;
            }

            Assert.True(holders >= 2, $"{message.Kind} acknowledged on {holders} of 3 replicas");
            Assert.Equal(2, ack.Version);
        }
    }

    [Fact]
    public async Task A_fresh_message_whose_append_stalled_and_then_committed_is_acknowledged_as_new_not_as_a_duplicate()
    {
        var (settings, replicas) = Topology("stalled_commit", "Primary", copies: 1);
        await using var cluster = await TestClusters.StartAsync(settings);
        var client = new Pr2Client(cluster.Client);
        await client.SendAsync(Shard, "order/s", MessageKind.Insert, "{}");

        var message = new Message(Guid.NewGuid(), "test", new ActorRef(Shard, "order/s"), MessageKind.Modify, """{"n": 1}""");
        Task<WriteAck> send;
        await using (var hold = await HeadLock.TakeAsync(replicas[0]))
        {
            send = client.SendAsync(message);
            await hold.WaitForWaiterAsync();
            // The fault: the commit stalls for longer than the silo waits before it sends the append again (1 s).
            await Task.Delay(TimeSpan.FromSeconds(2.5));
            await hold.ReleaseAsync();
        }

        var ack = await send;
        Assert.False(ack.Duplicate, "the only call with this MessageId was answered as a duplicate of an earlier one");
        Assert.Equal(1, await ReplicaContents.CountAsync(replicas[0], message.MessageId));
        Assert.True((await client.SendAsync(message)).Duplicate, "a second call is a duplicate");
    }

    [Fact]
    public async Task A_write_sent_after_its_idle_primary_was_killed_is_acknowledged_on_the_other_replica_while_the_dead_one_stays_down()
    {
        var (settings, replicas) = Topology("idle_kill", "Primary", copies: 2);
        await using var cluster = await TestClusters.StartAsync(settings);
        var client = new Pr2Client(cluster.Client);
        const string actor = "order/k";
        var insert = await client.SendAsync(Shard, actor, MessageKind.Insert, """{"v": 1}""");
        await Eventually.TrueAsync(() => HoldsAsync(replicas[1], insert.MessageId), TimeSpan.FromSeconds(30), "replica 1 has the insert");

        // The fault: the primary's server is killed between writes, while the writer's pooled connection to it sits idle.
        // The next append finds the server gone only when it reads the answer: nothing of it was written there, so it
        // must not be held in doubt until a server that may never return answers again.
        await Task.Delay(TimeSpan.FromSeconds(1));
        await _serverA.Server.StopAsync("immediate");
        var answers = new List<string>();
        try
        {
            var message = new Message(Guid.NewGuid(), "test", new ActorRef(Shard, actor), MessageKind.Modify, """{"v": 2}""");
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            WriteAck? ack = null;
            while (ack is null && DateTime.UtcNow < deadline)
            {
                try
                {
                    ack = await client.SendAsync(message);
                }
                catch (Pr2Exception e) when (e.IsRetriable)
                {
                    answers.Add(Describe(e));
                    await Task.Delay(100);
                }
            }

            Assert.True(ack is { Version: 2, Duplicate: false }, $"no acknowledgement while replica 0 is down: {string.Join(" | ", answers.Distinct())}");
            Assert.True(await HoldsAsync(replicas[1], message.MessageId), "replica 1 holds the write once");
        }
        finally
        {
            await _serverA.Server.StartAgainAsync();
        }
    }

    [Fact]
    public async Task An_append_that_finds_its_idle_server_killed_says_nothing_was_written_and_leaves_nothing_in_doubt()
    {
        var topology = _serverA.CreateTopology("idle_writer", Shard);
        await Migrations.MigrateAsync(topology.Settings);
        var database = topology.Database(Shard);
        var actor = new ActorRef(Shard, "order/w");
        var writer = await JournalWriter.OpenAsync(Shard, database, 100, NullLogger.Instance);
        await using (writer)
        {
            await writer.AppendAsync(Appends.Request(actor, MessageKind.Insert, 1));
            await writer.AppendAsync(Appends.Request(actor, MessageKind.Modify, 2));

            // Killed between commits: the writer's pooled connection learns it only when it reads the next answer.
            await Task.Delay(TimeSpan.FromSeconds(1));
            await _serverA.Server.StopAsync("immediate");
            var third = Appends.Request(actor, MessageKind.Modify, 3);
            try
            {
                var failure = await Assert.ThrowsAsync<Pr2Exception>(() => writer.AppendAsync(third));
                Assert.True(failure.IsRetriable, failure.Message);
                Assert.Contains("nothing was written", failure.Message);
                Assert.True(writer.IsBroken);
                Assert.Empty(writer.Abandon());
            }
            finally
            {
                await _serverA.Server.StartAgainAsync();
            }

            Assert.Equal(0, await ReplicaContents.CountAsync(database, third.Message.MessageId));
        }
    }

    // Replica 0 on server A, the others on server B; shard 0 on server B.
    private (Dictionary<string, string?> Settings, NpgsqlDataSource[] Replicas) Topology(string prefix, string policy, int copies)
    {
        var settings = new Dictionary<string, string?>((copies == 1 ? _serverA : _serverB).CreateTopology(prefix, 0).Settings);
        var databases = new NpgsqlDataSource[copies];
        for (var i = 0; i < copies; i++)
        {
            var topology = (i == 0 ? _serverA : _serverB).CreateTopology($"{prefix}_{i}", Shard);
            settings[$"Pr2:Topology:Shards:{Shard}:Replicas:{i}"] = topology.Settings[$"Pr2:Topology:Shards:{Shard}:Replicas:0"];
            databases[i] = topology.Database(Shard);
        }

        settings[$"Pr2:Topology:Shards:{Shard}:AckPolicy"] = policy;
        return (settings, databases);
    }

    private static string Describe(Exception? answer) => answer is null ? "a successful answer" : answer is Pr2Exception e ? $"{e.Code}: {e.Message}" : answer.ToString();

    private static async Task<bool> HoldsAsync(NpgsqlDataSource replica, Guid messageId) => await ReplicaContents.CountAsync(replica, messageId) == 1;
}
