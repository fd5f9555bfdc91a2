using PR2.Client;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// Sealing a shard for its removal under writers, with one replica stopped when it begins: the seal waits for that
/// replica, then retires every replica and makes them equal. Afterwards the replicas hold every acknowledged entry and
/// none of a refused one; every retry is answered by the sealed journal (its first acknowledgement, or the same final
/// <see cref="ErrorCode.ShardRemoved"/>); strong reads are served from it.
/// </summary>
public sealed class ShardSealTests(TwoPostgresServers servers) : IClassFixture<TwoPostgresServers>
{
    private const int Shard = 1;

    [Fact]
    public async Task A_shard_sealed_under_writers_keeps_every_ack_answers_every_retry_by_its_journal_and_writes_nothing_after()
    {
        // Shard 0 and replica 0 on server A, replica 1 on server B; acknowledged on one replica (Primary policy).
        var control = servers.A.CreateTopology("seal", 0);
        var onA = servers.A.CreateTopology("seal_a", Shard);
        var onB = servers.B.CreateTopology("seal_b", Shard);
        var settings = new Dictionary<string, string?>(control.Settings)
        {
            [$"Pr2:Topology:Shards:{Shard}:Replicas:0"] = onA.Settings[$"Pr2:Topology:Shards:{Shard}:Replicas:0"],
            [$"Pr2:Topology:Shards:{Shard}:Replicas:1"] = onB.Settings[$"Pr2:Topology:Shards:{Shard}:Replicas:0"],
            [$"Pr2:Topology:Shards:{Shard}:AckPolicy"] = "Primary",
        };
        await using var cluster = await TestClusters.StartAsync(settings);
        var client = new Pr2Client(cluster.Client);
        var replicas = new[] { onA.Database(Shard), onB.Database(Shard) };

        // Writers (single messages and atomic batches) retry each message with the same MessageId until a final answer,
        // and stop once a fresh one is refused for good.
        var acknowledged = new System.Collections.Concurrent.ConcurrentDictionary<Guid, (Message Message, WriteAck Ack)>();
        var removed = new System.Collections.Concurrent.ConcurrentBag<Message>();
        var others = new System.Collections.Concurrent.ConcurrentBag<string>();
        var writers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            for (var i = 0; ; i++)
            {
                Message[] messages = w == 3
                    ? [Fresh($"item/batch-{i}-a", MessageKind.Insert), Fresh($"item/batch-{i}-b", MessageKind.Insert)]
                    : [i == 0 ? Fresh($"item/w{w}", MessageKind.Insert) : Fresh($"item/w{w}", MessageKind.Modify)];
                switch (await FinalAsync(() => messages.Length == 1 ? client.SendAsync(messages[0]).ContinueWith(t => new[] { t.Result }) : client.SendBatchAsync(Shard, messages).ContinueWith(t => t.Result.Acks)))
                {
                    case WriteAck[] acks:
                        for (var m = 0; m < messages.Length; m++)
                        {
                            acknowledged[messages[m].MessageId] = (messages[m], acks[m]);
                        }

                        break;
                    case Pr2Exception { Code: ErrorCode.ShardRemoved }:
                        messages.ToList().ForEach(removed.Add);
                        return;
                    case var other:
                        others.Add($"{messages[0].Receiver}: {other}");
                        return;
                }
            }
        })).ToArray();

        // Replica 1 takes no copies (its journal held locked by the test, as a slow server would), then stops: what is
        // acknowledged is on replica 0 alone when the removal begins. The seal waits for replica 1 to answer (it could hold
        // acknowledged entries no other has), and then until it holds every entry the other has.
        await Eventually.TrueAsync(() => Task.FromResult(acknowledged.Count >= 10), TimeSpan.FromSeconds(30), "writes acknowledged before the lock");
        await using var copies = await replicas[1].OpenConnectionAsync();
        var holding = await copies.BeginTransactionAsync();
        await using (var lockJournal = new Npgsql.NpgsqlCommand("lock table pr2_journal in share mode", copies, holding))
        {
            await lockJournal.ExecuteNonQueryAsync();
        }

        var writer = cluster.Client.GetGrain<IShardWriterGrain>(Shard);
        Task<IReadOnlyDictionary<int, long>> sealing;
        try
        {
            var before = acknowledged.Count;
            await Eventually.TrueAsync(() => Task.FromResult(acknowledged.Count >= before + 20), TimeSpan.FromSeconds(30), "writes acknowledged on replica 0 alone");
            await servers.B.Server.PauseAsync();
            await cluster.Client.GetGrain<IDirectoryGrain>(0).RemoveShard(Shard);
            var waiting = await Assert.ThrowsAsync<Pr2Exception>(() => writer.Seal());
            Assert.True(waiting is { Code: ErrorCode.ShardUnavailable } && waiting.Message.Contains("replica 1 does not answer", StringComparison.Ordinal), waiting.Message);
        }
        finally
        {
            await servers.B.Server.ResumeAsync();
        }

        sealing = Retrying.CallAsync(() => writer.Seal());
        if (await Task.WhenAny(sealing, Task.Delay(TimeSpan.FromSeconds(3))) == sealing)
        {
            var early = await Record.ExceptionAsync(() => sealing);
            Assert.Fail($"the seal ended while replica 1 could take none of replica 0's entries: {early?.Message ?? "sealed"}");
        }

        await holding.RollbackAsync();
        var heads = await sealing;
        await Task.WhenAll(writers).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Empty(others);
        Assert.Equal(4, removed.Count(m => m.Receiver.ActorId.StartsWith("item/w", StringComparison.Ordinal)) + removed.Count(m => m.Receiver.ActorId.EndsWith("-a", StringComparison.Ordinal)));

        // Sealed: the replicas hold the same entries, every acknowledged one and none refused, up to the heads recorded.
        var held = await Task.WhenAll(replicas.Select(ReplicaContents.MessageIdsAsync));
        Assert.Equal(held[0].Order(), held[1].Order());
        Assert.Empty(acknowledged.Keys.Except(held[0]));
        Assert.Empty(removed.Select(m => m.MessageId).Intersect(held[0]));
        for (var r = 0; r < replicas.Length; r++)
        {
            await using var head = replicas[r].CreateCommand("select position from pr2_writer_head");
            Assert.Equal(heads[r], (long)(await head.ExecuteScalarAsync())!);
        }

        // Every retry is answered by the journal: its first acknowledgement, or the same final refusal.
        foreach (var (message, ack) in acknowledged.Values.Where(a => a.Message.Receiver.ActorId.StartsWith("item/w", StringComparison.Ordinal)))
        {
            var again = await client.SendAsync(message);
            Assert.Equal((ack.Position, ack.Version, true), (again.Position, again.Version, again.Duplicate));
        }

        foreach (var message in removed.Where(m => m.Receiver.ActorId.StartsWith("item/w", StringComparison.Ordinal)))
        {
            Assert.Equal(ErrorCode.ShardRemoved, (await Assert.ThrowsAsync<Pr2Exception>(() => client.SendAsync(message))).Code);
        }

        var changed = acknowledged.Values.First().Message with { Body = """{"changed": true}""" };
        Assert.Equal(ErrorCode.IdempotencyConflict, (await Assert.ThrowsAsync<Pr2Exception>(() => client.SendAsync(changed))).Code);

        // Strong reads are served from the sealed journal: each writer's actor at as many versions as it was acknowledged.
        for (var w = 0; w < 3; w++)
        {
            var versions = acknowledged.Values.Count(a => a.Message.Receiver.ActorId == $"item/w{w}");
            Assert.Equal(versions, (await client.ReadRecordAsync(Shard, $"item/w{w}", ReadConsistency.Strong)).Record.Version);
        }
    }

    [Fact]
    public async Task A_removal_drains_to_the_sealed_heads_waits_for_rule_messages_it_cannot_deliver_yet_and_ends_with_the_shard_released_everywhere()
    {
        // Shard 0 and shard 1 (two replicas) on server A; shard 2, where shard 1's rule sends, on server B. Shard 1's idle
        // connections are kept 5 minutes (Npgsql's default; the test topologies close them after 15 s): what ends them is
        // PR2 closing its pools.
        string KeepIdle(string name) => new Npgsql.NpgsqlConnectionStringBuilder(servers.A.CreateTopology(name, Shard).Settings[$"Pr2:Topology:Shards:{Shard}:Replicas:0"])
        {
            ConnectionIdleLifetime = 300,
        }.ConnectionString;
        var settings = new Dictionary<string, string?>(servers.A.CreateTopology("drain", 0).Settings)
        {
            [$"Pr2:Topology:Shards:{Shard}:Replicas:0"] = KeepIdle("drain_a"),
            [$"Pr2:Topology:Shards:{Shard}:Replicas:1"] = KeepIdle("drain_b"),
            ["Pr2:Topology:Shards:2:Replicas:0"] = servers.B.CreateTopology("drain_t", 2).Settings["Pr2:Topology:Shards:2:Replicas:0"],
        };
        var databases = new[] { 0, 1 }.Select(r => new Npgsql.NpgsqlConnectionStringBuilder(settings[$"Pr2:Topology:Shards:{Shard}:Replicas:{r}"]).Database!).ToList();
        var cluster = await TestClusters.StartAsync(settings);
        try
        {
            var client = new Pr2Client(cluster.Client);
            await Retrying.CallAsync(() => client.PutRuleAsync("""
                {
                  "name": "copy-items",
                  "on": {"type": "item", "kinds": ["insert"], "shards": [1]},
                  "do": [{"send": {"shard": 2, "actor": "copy/{entry.key}", "kind": "insert", "body": {"from": "{entry.actor}"}}}],
                  "start": "beginning"
                }
                """));
            for (var i = 0; i < 20; i++)
            {
                await client.SendAsync(Shard, $"item/{i}", MessageKind.Insert, "{}");
            }

            // Shard 2 stops answering: the rule's messages wait in shard 1's outboxes, and the removal must wait for them.
            var removal = cluster.Client.GetGrain<IShardRemovalGrain>(Shard);
            ShardRemovalStatus status;
            try
            {
                await servers.B.Server.PauseAsync();
                for (var i = 20; i < 30; i++)
                {
                    await client.SendAsync(Shard, $"item/{i}", MessageKind.Insert, "{}");
                }

                // A rule started "now" on shard 1 after its last write has nothing to do there: the removal must not wait for it.
                await Retrying.CallAsync(() => client.PutRuleAsync("""
                    {"name": "idle-count", "on": {"type": "item", "shards": [1]}, "do": [{"view": {"name": "idle_count", "key": "all", "add": {"n": 1}}}]}
                    """));
                status = await client.RemoveShardAsync(Shard, wait: false);
                await Eventually.TrueAsync(async () => (status = await removal.Advance()) is { Removal.State: ShardRemoval.Draining } s && s.WaitingFor.Any(w => w.Contains("outbox", StringComparison.Ordinal)),
                    TimeSpan.FromSeconds(30), "the removal sealed, waiting for the outbox");
                Assert.Equal(ShardRemoval.Draining, (await removal.Advance()).Removal.State);
            }
            finally
            {
                await servers.B.Server.ResumeAsync();
            }

            await Eventually.TrueAsync(async () => (status = await removal.Advance()).Removal.State == ShardRemoval.Releasing, TimeSpan.FromSeconds(60),
                "the removal drained once shard 2 takes the rule's messages");

            // Drained: on each replica every mark of shard 1 at its sealed head, nothing left to deliver, each copy once in shard 2.
            var heads = status.Removal.SealedHeads!;
            Assert.Equal([0, 1], heads.Keys.Order());
            foreach (var (replica, head) in heads)
            {
                await using var database = Npgsql.NpgsqlDataSource.Create(settings[$"Pr2:Topology:Shards:{Shard}:Replicas:{replica}"]!);
                await using (var marks = database.CreateCommand("select count(*) filter (where position >= $1), count(*) from pr2_agent_mark where shard = 1"))
                {
                    marks.Parameters.Add(new() { Value = head });
                    await using var reader = await marks.ExecuteReaderAsync();
                    await reader.ReadAsync();
                    Assert.True(reader.GetInt64(1) >= 2 && reader.GetInt64(0) == reader.GetInt64(1), $"replica {replica}: {reader.GetInt64(0)} of {reader.GetInt64(1)} marks at the sealed head {head}");
                }

                await using var pending = database.CreateCommand("select count(*) from pr2_outbox where delivered_at is null and failure is null");
                Assert.Equal(0L, await pending.ExecuteScalarAsync());
            }

            await using var copies = Npgsql.NpgsqlDataSource.Create(settings["Pr2:Topology:Shards:2:Replicas:0"]!);
            await using var count = copies.CreateCommand("select count(*), count(distinct actor_id) from pr2_journal where actor_id like 'copy/%'");
            await using (var reader = await count.ExecuteReaderAsync())
            {
                await reader.ReadAsync();
                Assert.Equal((30L, 30L), (reader.GetInt64(0), reader.GetInt64(1)));
            }

            // Released: every silo drops the shard within a directory round, and the removal ends (followed as pr2 shards remove does).
            var followed = new RecordedReports<ShardRemovalStatus>();
            status = await client.RemoveShardAsync(Shard, progress: followed, stallTimeout: TimeSpan.FromSeconds(60));
            Assert.Equal(ShardRemoval.Removed, status.Removal.State);
            Assert.Equal(ShardRemoval.Removed, followed.Reports.Last().Removal.State);
            var entry = (await cluster.Client.GetGrain<IDirectoryGrain>(0).GetShards()).Single(e => e.Shard == Shard);
            Assert.Equal("removed", entry.Status);
            foreach (var call in new Func<Task>[]
            {
                () => client.SendAsync(Shard, "item/after", MessageKind.Insert, "{}"),
                () => client.SendAsync(Shard, "item/0", MessageKind.Modify, "{}"),
                () => client.ReadRecordAsync(Shard, "item/0", ReadConsistency.Eventual),
            })
            {
                var refused = await Record.ExceptionAsync(call);
                Assert.True(refused is Pr2Exception { Code: ErrorCode.ShardRemoved }, $"after the removal: {refused?.Message ?? "answered"}");
            }

            Assert.DoesNotContain(await client.FindObjectsAsync("item", null, 100), o => o.Shard == Shard);

            // No pool of PR2 keeps a session on its databases any more (they close after twice the call bound): they can go.
            foreach (var database in databases)
            {
                await using var admin = Npgsql.NpgsqlDataSource.Create(servers.A.Server.ConnectionString("postgres"));
                await Eventually.TrueAsync(async () =>
                {
                    await using var sessions = admin.CreateCommand("select count(*) from pg_stat_activity where datname = $1 and application_name like 'pr2%'");
                    sessions.Parameters.Add(new() { Value = database });
                    return (long)(await sessions.ExecuteScalarAsync())! == 0;
                }, TimeSpan.FromSeconds(60), $"no session left on {database}");
                await using var drop = admin.CreateCommand($"drop database \"{database}\" with (force)"); // the test's own sessions
                await drop.ExecuteNonQueryAsync();
            }
        }
        finally
        {
            await cluster.DisposeAsync();
        }

        // A silo started again with the shard still configured creates none of its databases and does not serve it.
        await using var again = await TestClusters.StartAsync(settings);
        await using (var admin = Npgsql.NpgsqlDataSource.Create(servers.A.Server.ConnectionString("postgres")))
        {
            await using var exists = admin.CreateCommand("select count(*) from pg_database where datname = any($1)");
            exists.Parameters.Add(new() { Value = databases.ToArray() });
            Assert.Equal(0L, await exists.ExecuteScalarAsync());
        }

        var restarted = new Pr2Client(again.Client);
        Assert.Equal("removed", (await restarted.GetShardsAsync()).Single(e => e.Shard == Shard).Status);
        var afterRestart = await Record.ExceptionAsync(() => restarted.SendAsync(Shard, "item/restarted", MessageKind.Insert, "{}"));
        Assert.True(afterRestart is Pr2Exception { Code: ErrorCode.ShardRemoved }, $"a write after the restart: {afterRestart?.Message ?? "acknowledged"}");

        // A silo started while no replica of shard 0 answers cannot tell the shard was removed: it creates none of its
        // databases either (an empty one would take writes), and waits for the directory.
        var blindSettings = new Dictionary<string, string?>(settings)
        {
            ["Pr2:Topology:Shards:0:Replicas:0"] = new Npgsql.NpgsqlConnectionStringBuilder(settings["Pr2:Topology:Shards:0:Replicas:0"]) { Port = LoopbackPorts.Free(), Timeout = 2 }.ConnectionString,
        };
        await using (var blind = await TestClusters.StartAsync(blindSettings))
        {
            await using var admin = Npgsql.NpgsqlDataSource.Create(servers.A.Server.ConnectionString("postgres"));
            await using var exists = admin.CreateCommand("select count(*) from pg_database where datname = any($1)");
            exists.Parameters.Add(new() { Value = databases.ToArray() });
            Assert.Equal(0L, await exists.ExecuteScalarAsync());
        }
    }

    private static Message Fresh(string actor, MessageKind kind) =>
        new(Guid.NewGuid(), "test", new ActorRef(Shard, actor), kind, kind == MessageKind.Insert ? "{}" : $$"""{"at": "{{Guid.NewGuid():N}}"}""");

    // The acknowledgements, or the final refusal (a retriable answer past 30 s counts as final too: the test fails on it).
    private static async Task<object> FinalAsync(Func<Task<WriteAck[]>> send)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            try
            {
                return await send();
            }
            catch (Exception e) when (e is Pr2Exception or AggregateException { InnerException: Pr2Exception })
            {
                var refusal = e as Pr2Exception ?? (Pr2Exception)e.InnerException!;
                if (!refusal.IsRetriable || DateTime.UtcNow > deadline)
                {
                    return refusal;
                }

                await Task.Delay(50);
            }
        }
    }
}
