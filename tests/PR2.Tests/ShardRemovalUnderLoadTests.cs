using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using PR2.Client;
using PR2.Grains.Agents;
using PR2.Tests.Infrastructure;
using Xunit.Abstractions;

namespace PR2.Tests;

/// <summary>
/// A shard removed while a workload writes to every shard and rules send in both directions between the removed shard
/// and one that stays, on a cluster of silos in their own OS processes, one of which is killed (SIGKILL) in each state
/// of the removal: the silo sealing the shard while one replica holds the seal up, the silo of the removal grain while a
/// paused rule holds up the drain, and a silo while the others release the shard. Afterwards, against what each client
/// was told: every acknowledged message is in every replica once (the removed shard's sealed ones too), every
/// <see cref="ErrorCode.ShardRemoved"/> message in none, every writer of the removed shard told so for good; the other
/// shards' replicas converge and fold their journals; each rule acted exactly once per source entry, and a rule message
/// the removed shard refused is one it never took; agent marks never went back.
/// </summary>
public sealed class ShardRemovalUnderLoadTests(TwoPostgresServers servers, ITestOutputHelper output) : IClassFixture<TwoPostgresServers>
{
    private const int Removed = 3;
    private const int WritersPerShard = 3;
    private static readonly int[] Shards = [1, 2, Removed];

    // Shard 3's inserts are copied to shard 1 (paused during the removal, to hold the drain), and shard 1's to shard 3.
    private const string FromRemoved = """
        {"name": "from-removed", "on": {"type": "item", "kinds": ["insert"], "shards": [3]},
         "do": [{"send": {"shard": 1, "actor": "copy3/{entry.key}", "kind": "insert", "body": {"from": "{entry.actor}"}}}], "start": "beginning"}
        """;

    private const string ToRemoved = """
        {"name": "to-removed", "on": {"type": "item", "kinds": ["insert"], "shards": [1]},
         "do": [{"send": {"shard": 3, "actor": "copy1/{entry.key}", "kind": "insert", "body": {"from": "{entry.actor}"}}}], "start": "beginning"}
        """;

    private const string LateRule = """
        {"name": "late-count", "on": {"type": "item", "kinds": ["insert"]}, "do": [{"view": {"name": "late_count", "key": "all", "add": {"n": 1}}}], "start": "beginning"}
        """;

    private readonly ConcurrentDictionary<Guid, (Message Message, WriteAck Ack)> _acked = new();
    private readonly ConcurrentBag<Message> _removedAnswers = [];
    private readonly ConcurrentBag<string> _problems = [];
    private readonly ClientHistory _history = new();
    private readonly List<ProcessSilo> _silos = [];

    [Fact]
    public async Task A_shard_removed_under_writes_to_every_shard_with_a_silo_killed_in_each_state_keeps_every_answer_true()
    {
        var (settings, replicas) = Topology();
        // silo-1 reaches server B through a proxy the test cuts during the removal (the other silos still reach B).
        await using var proxyB = new TcpProxy(servers.B.Server.Port);
        try
        {
            _silos.Add(await ProcessSilo.StartAsync("silo-0", settings));
            _silos.Add(await ProcessSilo.StartAsync("silo-1", Through(settings, servers.B.Server.Port, proxyB.Port)));
            using var host = await ProcessSilo.StartClientAsync(settings["Pr2:Silo:Membership"]!);
            var cluster = host.Services.GetRequiredService<IClusterClient>();
            var client = new Pr2Client(cluster);
            await Retrying.CallAsync(() => client.PutRuleAsync(FromRemoved));
            await Retrying.CallAsync(() => client.PutRuleAsync(ToRemoved));

            using var stop = new CancellationTokenSource();
            var marks = new MarkWatch(replicas);
            var watching = marks.RunAsync(stop.Token);
            var writers = Shards.SelectMany(shard => Enumerable.Range(0, WritersPerShard).Select(w => Task.Run(() => WriteAsync(client, shard, w, stop.Token)))).ToList();
            var reader = Task.Run(() => ReadStronglyAsync(client, stop.Token));
            await Eventually.TrueAsync(() => Task.FromResult(Shards.All(s => _acked.Values.Count(a => a.Message.Receiver.Shard == s) >= 30)),
                TimeSpan.FromSeconds(90), "30 writes acknowledged on every shard");

            // Shard 1's rule has delivered copies to shard 3 before the removal begins (and will see refusals after).
            await Eventually.TrueAsync(async () => await Sql.ScalarAsync(replicas[Removed][0], "select count(*) from pr2_journal where actor_type = 'copy1'") >= 10,
                TimeSpan.FromSeconds(60), "shard 1's rule copied to shard 3");

            // The drain is held up by the rule copying shard 3's inserts: paused, and seen falling behind shard 3's journal.
            await Retrying.CallAsync(() => client.PauseRuleAsync("from-removed"));
            await Eventually.TrueAsync(async () => await HeadAsync(replicas[Removed][0]) - await MarkAsync(replicas[Removed][0], "rule-from-removed") >= 10,
                TimeSpan.FromSeconds(60), "the paused rule behind shard 3's journal");

            // From here until the release, silo-1 (unless killed first) cannot reach server B: replica 1 of shards 1 and 3
            // and replica 0 of shard 2, while the other silos can.
            proxyB.BlackHole();
            output.WriteLine($"nemesis: cut silo-1 off server B at {DateTime.UtcNow:HH:mm:ss.fff}, after {_acked.Count} acks");

            // Sealing: replica 1 takes no commit (its journal locked, a commit there waiting with the head's row), so the seal
            // cannot retire it. The silo running the seal is killed, then the replica lets go.
            var status = await SealingHeldAsync(cluster, replicas[Removed][1], async () =>
            {
                // A rule put while the seal waits (following every shard, from the beginning) is taken at once, and never
                // follows the shard being removed.
                var late = await client.PutRuleAsync(LateRule);
                Assert.Equal(long.MaxValue, late.StartAfter[Removed]);
                await KillHostOfAsync(cluster, cluster.GetGrain<IShardWriterGrain>(Removed), "the shard's writer, sealing it");
                _silos.Add(await ProcessSilo.StartAsync($"silo-{_silos.Count}", settings));
            });
            output.WriteLine($"sealing: {string.Join("; ", status.WaitingFor)}");

            // Draining: held by the paused rule until its removal grain's silo is killed; then the rule resumes.
            var removal = cluster.GetGrain<IShardRemovalGrain>(Removed);
            await Eventually.TrueAsync(async () => await AdvanceAsync(removal) is { Removal.State: ShardRemoval.Draining } s
                    && (status = s).WaitingFor.Any(w => w.Contains("rule-from-removed", StringComparison.Ordinal)),
                TimeSpan.FromSeconds(120), "the removal sealed and draining, waiting for the paused rule");
            output.WriteLine($"draining: {string.Join("; ", status.WaitingFor)}");
            await KillHostOfAsync(cluster, removal, "the removal grain, draining");
            _silos.Add(await ProcessSilo.StartAsync($"silo-{_silos.Count}", settings));
            await Retrying.CallAsync(() => client.ResumeRuleAsync("from-removed"));

            // Releasing: a silo is killed while the others drop the shard; the removal waits for the survivors and the new one.
            string? drained = null;
            await Eventually.TrueAsync(async () => (drained = (await ShardAsync(client)).Removal?.State) is ShardRemoval.Releasing or ShardRemoval.Removed,
                TimeSpan.FromSeconds(120), "the removal drained");
            Assert.True(drained == ShardRemoval.Releasing, "the removal went past releasing before a silo could be killed in it");
            await KillHostOfAsync(cluster, removal, "the removal grain, releasing");
            proxyB.Heal();
            output.WriteLine($"nemesis: silo-1 reaches server B again at {DateTime.UtcNow:HH:mm:ss.fff}");
            _silos.Add(await ProcessSilo.StartAsync($"silo-{_silos.Count}", settings));
            var followed = new RecordedReports<ShardRemovalStatus>();
            status = await Retrying.CallAsync(() => client.RemoveShardAsync(Removed, progress: followed, stallTimeout: TimeSpan.FromSeconds(120)));
            Assert.Equal(ShardRemoval.Removed, status.Removal.State);
            output.WriteLine("followed: " + string.Join(" | ", followed.Reports.Select(r => $"{r.Removal.State}: {string.Join("; ", r.WaitingFor)}").Distinct()));

            // Every silo replaced after the removal, one configured without the shard (its entry deleted, as the removal asks):
            // the rules they load, the one sending to the removed shard among them, must run there. The writers go on.
            var withoutRemoved = settings.Where(p => !p.Key.StartsWith($"Pr2:Topology:Shards:{Removed}:", StringComparison.Ordinal)).ToDictionary();
            ProcessSilo[] replacements = [await ProcessSilo.StartAsync($"silo-{_silos.Count}", withoutRemoved), await ProcessSilo.StartAsync($"silo-{_silos.Count + 1}", settings)];
            foreach (var old in _silos.Where(s => !s.HasExited))
            {
                old.Kill();
                output.WriteLine($"nemesis: SIGKILL {old.Name} (replaced after the removal) at {DateTime.UtcNow:HH:mm:ss.fff}, after {_acked.Count} acks");
            }

            _silos.AddRange(replacements);
            var acked = _acked.Count;
            await Eventually.TrueAsync(() => Task.FromResult(_acked.Count >= acked + 30), TimeSpan.FromSeconds(120), "writes acknowledged by the replaced silos");
            await stop.CancelAsync();
            await Task.WhenAll(writers).WaitAsync(TimeSpan.FromSeconds(180));
            await reader.WaitAsync(TimeSpan.FromSeconds(60));
            await SettledAsync(client, replicas);
            await watching;

            var sealedHeads = status.Removal.SealedHeads!;
            await CheckAsync(client, replicas, sealedHeads);
            Assert.Empty(marks.Regressions);
            Assert.True(marks.Samples > 100, $"only {marks.Samples} mark samples");
        }
        finally
        {
            foreach (var silo in _silos)
            {
                var log = silo.Output;
                output.WriteLine($"--- {silo.Name}: {(log.Length > 3000 ? log[..1000] + "\n...\n" + log[^2000..] : log)}");
                silo.Dispose();
            }
        }
    }

    // Holds replica 1 of the removed shard (its journal locked), starts the removal, waits until the seal says it waits
    // for that replica, runs duringHold, and lets the replica go.
    private async Task<ShardRemovalStatus> SealingHeldAsync(IClusterClient cluster, NpgsqlDataSource replica, Func<Task> duringHold)
    {
        await using var connection = await replica.OpenConnectionAsync();
        await using var holding = await connection.BeginTransactionAsync();
        await using (var lockJournal = new NpgsqlCommand("lock table pr2_journal in share mode", connection, holding))
        {
            await lockJournal.ExecuteNonQueryAsync();
        }

        await Retrying.CallAsync(() => cluster.GetGrain<IDirectoryGrain>(0).RemoveShard(Removed));
        ShardRemovalStatus status = null!;
        await Eventually.TrueAsync(async () =>
        {
            if (await AdvanceAsync(cluster.GetGrain<IShardRemovalGrain>(Removed)) is not { } now)
            {
                return false;
            }

            status = now;
            // Either replica 1 could not be retired (a commit there holds its head) or not copied to: the seal waits.
            return status.Removal.State == ShardRemoval.Sealing && status.WaitingFor.Any(w => w.Contains("replica 1", StringComparison.Ordinal) || w.Contains("could not be made equal", StringComparison.Ordinal));
        }, TimeSpan.FromSeconds(120), "the seal waiting for replica 1");
        await duringHold();
        await holding.RollbackAsync();
        return status;
    }

    // One writer of a shard: inserts a fresh item every other turn and modifies its first one between; each message is
    // sent again with its MessageId until a final answer, paced. A writer of the removed shard stops at ShardRemoved.
    private async Task WriteAsync(Pr2Client client, int shard, int writer, CancellationToken stop)
    {
        var first = new ActorRef(shard, $"item/w{writer}-0");
        for (var turn = 0; !stop.IsCancellationRequested; turn++)
        {
            var message = turn % 2 == 0
                ? new Message(Guid.NewGuid(), $"writer-{shard}-{writer}", turn == 0 ? first : new ActorRef(shard, $"item/w{writer}-{turn}"), MessageKind.Insert, $$"""{"turn": {{turn}}}""")
                : new Message(Guid.NewGuid(), $"writer-{shard}-{writer}", first, MessageKind.Modify, $$"""{"turn": {{turn}}}""");
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(300);
            for (var call = 1; ; call++)
            {
                try
                {
                    var ack = await client.SendAsync(message);
                    _history.Acknowledged(message, ack, call);
                    _acked[message.MessageId] = (message, ack);
                    // Paced (at most 20 a second a writer): a steady load the rules keep up with, not a flood.
                    await Task.Delay(50, CancellationToken.None);
                    break;
                }
                catch (Exception e) when (e is Pr2Exception { IsRetriable: true } or TimeoutException or Orleans.Runtime.SiloUnavailableException
                                              or Orleans.Runtime.OrleansMessageRejectionException && DateTime.UtcNow < deadline)
                {
                    await Task.Delay(100, CancellationToken.None);
                }
                catch (Pr2Exception e) when (e.Code == ErrorCode.ShardRemoved && shard == Removed)
                {
                    _history.Refusal(message.MessageId, $"{message.Receiver} call {call}: {e.Message}");
                    _removedAnswers.Add(message);
                    return;
                }
                catch (Exception e)
                {
                    _problems.Add($"{message.Kind} {message.MessageId} to {message.Receiver}, call {call}: {e.GetType().Name}: {e.Message}");
                    return;
                }
            }
        }
    }

    private async Task ReadStronglyAsync(Pr2Client client, CancellationToken stop)
    {
        var actors = new[] { 1, 2 }.SelectMany(s => Enumerable.Range(0, WritersPerShard).Select(w => new ActorRef(s, $"item/w{w}-0"))).ToList();
        while (!stop.IsCancellationRequested)
        {
            await _history.ReadStronglyAsync(client, actors);
            await Task.Delay(50, CancellationToken.None);
        }
    }

    private async Task KillHostOfAsync(IClusterClient cluster, IAddressable grain, string what)
    {
        var address = await cluster.GetGrain<IManagementGrain>(0).GetActivationAddress(grain);
        var victim = _silos.FirstOrDefault(s => address is not null && s.SiloPort == address.Endpoint.Port && !s.HasExited)
            ?? _silos.First(s => !s.HasExited);
        victim.Kill();
        output.WriteLine($"nemesis: SIGKILL {victim.Name} ({(address is null ? "no activation found: the oldest silo" : $"host of {what}")}) at {DateTime.UtcNow:HH:mm:ss.fff}, after {_acked.Count} acks");
    }

    // Quiet: the remaining shards' replicas equal, their rules and records at their heads, every outbox row settled.
    private async Task SettledAsync(Pr2Client client, Dictionary<int, NpgsqlDataSource[]> replicas)
    {
        await Eventually.TrueAsync(async () => (await client.GetStatusAsync()).Shards.Where(s => s.Shard is 1 or 2)
            .All(s => s.Replicas.All(r => r.Reachable && r.Behind == 0)), TimeSpan.FromSeconds(120), "shards 1 and 2: every replica holds everything");
        var last = "";
        await Eventually.TrueAsync(async () =>
        {
            var states = new List<(long Mark, long Head, long Pending)>();
            foreach (var database in replicas[1])
            {
                states.Add((await MarkAsync(database, "rule-to-removed"), await HeadAsync(database),
                    await Sql.ScalarAsync(database, "select count(*) from pr2_outbox where delivered_at is null and failure is null")));
            }

            last = string.Join("; ", states.Select((s, r) => $"replica {r}: rule at {s.Mark} of {s.Head}, {s.Pending} to deliver"));
            return states.All(s => s.Mark == s.Head && s.Pending == 0);
        }, TimeSpan.FromSeconds(90), "shard 1's rule at its head on both replicas, its outbox settled").ContinueWith(t =>
        {
            output.WriteLine($"shard 1's rule, last seen: {last}");
            return t;
        }, TaskScheduler.Default).Unwrap();
        foreach (var shard in new[] { 1, 2 })
        {
            for (var r = 0; r < replicas[shard].Length; r++)
            {
                await client.CatchUpAsync(RecordsProjector.AgentName, shard, r);
            }
        }
    }

    private async Task CheckAsync(Pr2Client client, Dictionary<int, NpgsqlDataSource[]> replicas, IReadOnlyDictionary<int, long> sealedHeads)
    {
        output.WriteLine($"acknowledged {_acked.Count} ({string.Join(", ", Shards.Select(s => $"shard {s}: {_acked.Values.Count(a => a.Message.Receiver.Shard == s)}"))}), " +
            $"ShardRemoved {_removedAnswers.Count}, strong reads {_history.StrongReads}");
        foreach (var problem in _problems.Concat(_history.FalseDuplicates).Concat(_history.OrderReversals.Select(o => o.Problem)).Concat(_history.StaleStrongReads))
        {
            output.WriteLine("problem: " + problem);
        }

        // What the clients were told.
        Assert.Empty(_problems);
        Assert.Equal(WritersPerShard, _removedAnswers.Count);
        Assert.Empty(_history.FalseDuplicates);
        Assert.Empty(_history.OrderReversals);
        Assert.Empty(_history.StaleStrongReads);
        foreach (var databases in replicas.Values)
        {
            foreach (var database in databases)
            {
                Assert.Empty(await _history.CommittedRefusalsAsync(database));
            }
        }

        // Every shard: each acknowledged message on every replica, once; the replicas equal and each the fold of its journal.
        foreach (var shard in Shards)
        {
            var journals = new List<List<Guid>>();
            foreach (var database in replicas[shard])
            {
                var ids = await ReplicaContents.MessageIdsAsync(database);
                Assert.Equal(ids.Count, ids.Distinct().Count());
                var held = ids.ToHashSet();
                var missing = _acked.Values.Where(a => a.Message.Receiver.Shard == shard && !held.Contains(a.Message.MessageId)).ToList();
                Assert.True(missing.Count == 0, $"shard {shard}: acknowledged but not held: {string.Join(", ", missing.Take(5).Select(m => $"{m.Message.Receiver} v{m.Ack.Version}"))}");
                journals.Add(ids);
            }

            Assert.Equal(journals[0], journals[1]);
            var records = await Task.WhenAll(replicas[shard].Select(d => ReplicaContents.RecordsAsync(d)));
            Assert.Equal(records[0], records[1]);
            foreach (var database in replicas[shard])
            {
                Assert.Equal(await Sql.ScalarAsync(database, "select count(distinct actor_id) from pr2_journal"), await Sql.ScalarAsync(database, "select count(*) from pr2_record"));
                Assert.Equal(0L, await Sql.ScalarAsync(database, "select count(*) from pr2_record r where r.version <> (select count(*) from pr2_journal j where j.actor_id = r.actor_id)"));
            }
        }

        // The removed shard: sealed at the heads its removal recorded, refusing writes and reads for good.
        for (var r = 0; r < replicas[Removed].Length; r++)
        {
            Assert.Equal(sealedHeads[r], await HeadAsync(replicas[Removed][r]));
        }

        foreach (var call in new Func<Task>[]
        {
            () => client.SendAsync(Removed, "item/after", MessageKind.Insert, "{}"),
            () => client.SendAsync(Removed, "item/w0-0", MessageKind.Modify, "{}"),
            () => client.ReadRecordAsync(Removed, "item/w0-0", ReadConsistency.Strong),
        })
        {
            var refused = await Record.ExceptionAsync(call);
            Assert.True(refused is Pr2Exception { Code: ErrorCode.ShardRemoved }, $"after the removal: {refused?.Message ?? "answered"}");
        }

        // from-removed: each item inserted in the sealed journal copied to shard 1 exactly once, and nothing else copied.
        var removedInserts = await KeysAsync(replicas[Removed][0], "select split_part(actor_id, '/', 2) from pr2_journal where actor_type = 'item' and kind = 1");
        foreach (var database in replicas[1])
        {
            var copies = await KeysAsync(database, "select split_part(actor_id, '/', 2) from pr2_journal where actor_type = 'copy3'");
            Assert.Equal(removedInserts.Order(StringComparer.Ordinal), copies.Order(StringComparer.Ordinal));
        }

        // to-removed: each item inserted in shard 1 copied to the removed shard at most once, and nothing else; a copy the
        // sealed journal holds was answered delivered to a replica that sent it, and every refusal said ShardRemoved.
        var shardOneInserts = (await KeysAsync(replicas[1][0], "select split_part(actor_id, '/', 2) from pr2_journal where actor_type = 'item' and kind = 1")).ToHashSet();
        var copied = await KeysAsync(replicas[Removed][0], "select split_part(actor_id, '/', 2) from pr2_journal where actor_type = 'copy1'");
        Assert.Equal(copied.Count, copied.Distinct().Count());
        Assert.DoesNotContain(copied, k => !shardOneInserts.Contains(k));
        var refusedCopies = new List<string>();
        foreach (var database in replicas[1])
        {
            Assert.Equal(0L, await Sql.ScalarAsync(database, "select count(*) from pr2_outbox where failure is not null and failure not like 'ShardRemoved:%'"));
            Assert.Equal(0L, await Sql.ScalarAsync(database, "select count(*) from pr2_outbox where delivered_at is null and failure is null"));
        }

        var deliveredSomewhere = new HashSet<string>(StringComparer.Ordinal);
        foreach (var database in replicas[1])
        {
            deliveredSomewhere.UnionWith(await KeysAsync(database, "select split_part(target_actor, '/', 2) from pr2_outbox where rule = 'rule-to-removed' and delivered_at is not null"));
            refusedCopies.AddRange(await KeysAsync(database, "select split_part(target_actor, '/', 2) from pr2_outbox where rule = 'rule-to-removed' and failure is not null"));
        }

        var toldRefusedButHeld = copied.Where(k => !deliveredSomewhere.Contains(k)).ToList();
        Assert.True(toldRefusedButHeld.Count == 0, $"rule messages held by the sealed journal but answered ShardRemoved to every sender: {string.Join(", ", toldRefusedButHeld.Take(5))}");
        output.WriteLine($"from-removed copies {removedInserts.Count}; to-removed: {shardOneInserts.Count} sources, {copied.Count} taken before the seal, " +
            $"{refusedCopies.Count} outbox rows refused ShardRemoved");
        Assert.True(copied.Count > 10 && refusedCopies.Count > 0, "the rule sending to the removed shard had messages both taken and refused");
    }

    // Where the removal stands, or null when the call did not come back (a seal waiting for a replica can outlast it).
    private static async Task<ShardRemovalStatus?> AdvanceAsync(IShardRemovalGrain removal)
    {
        try
        {
            return await removal.Advance();
        }
        catch (Exception e) when (e is TimeoutException or Orleans.Runtime.OrleansException)
        {
            return null;
        }
    }

    private static async Task<ShardEntry> ShardAsync(Pr2Client client) => (await client.GetShardsAsync()).Single(s => s.Shard == Removed);

    private static Task<long> HeadAsync(NpgsqlDataSource database) => Sql.ScalarAsync(database, "select position from pr2_writer_head");

    private static async Task<long> MarkAsync(NpgsqlDataSource database, string agent)
    {
        // A rule's mark is named by its generation ("rule-x#g"); a rebuild's shadow ends in "~next".
        await using var command = database.CreateCommand(
            "select coalesce(max(position), 0) from pr2_agent_mark where (agent = $1 or agent like $1 || '#%') and agent not like '%~next'");
        command.Parameters.Add(new NpgsqlParameter { Value = agent });
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private static async Task<List<string>> KeysAsync(NpgsqlDataSource database, string sql)
    {
        var keys = new List<string>();
        await using var command = database.CreateCommand(sql);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            keys.Add(reader.GetString(0));
        }

        return keys;
    }

    // The settings with every connection to the server on port `port` made through `proxy` instead.
    private static Dictionary<string, string?> Through(Dictionary<string, string?> settings, int port, int proxy) =>
        settings.ToDictionary(p => p.Key, p => p.Key.Contains(":Replicas:", StringComparison.Ordinal)
            && new NpgsqlConnectionStringBuilder(p.Value) is { } connection && connection.Port == port
                ? new NpgsqlConnectionStringBuilder(p.Value) { Port = proxy }.ConnectionString
                : p.Value);

    // Shard 0 on server A; shard 1 on [A, B], shard 2 on [B, A], shard 3 (to be removed, Quorum) on [A, B]; membership in a
    // database of its own on A.
    private (Dictionary<string, string?> Settings, Dictionary<int, NpgsqlDataSource[]> Replicas) Topology()
    {
        var name = $"rmload{Guid.NewGuid():N}"[..14];
        var settings = new Dictionary<string, string?>(servers.A.CreateTopology(name, 0).Settings)
        {
            ["Pr2:Silo:Membership"] = servers.A.Server.ConnectionString($"{name}_members"),
            [$"Pr2:Topology:Shards:{Removed}:AckPolicy"] = "Quorum",
        };
        var replicas = new Dictionary<int, NpgsqlDataSource[]>();
        foreach (var shard in Shards)
        {
            PostgresFixture[] layout = shard == 2 ? [servers.B, servers.A] : [servers.A, servers.B];
            var topologies = layout.Select((server, r) => server.CreateTopology($"{name}_{shard}_{r}", shard)).ToList();
            for (var r = 0; r < topologies.Count; r++)
            {
                settings[$"Pr2:Topology:Shards:{shard}:Replicas:{r}"] = topologies[r].Settings[$"Pr2:Topology:Shards:{shard}:Replicas:0"];
            }

            replicas[shard] = [.. topologies.Select(t => t.Database(shard))];
        }

        return (settings, replicas);
    }

    /// <summary>Samples every agent mark on every replica; a mark smaller than the last seen of it is a regression.</summary>
    private sealed class MarkWatch(Dictionary<int, NpgsqlDataSource[]> replicas)
    {
        private readonly Dictionary<(int Shard, int Replica, string Agent, int Of), long> _last = [];

        public List<string> Regressions { get; } = [];

        public int Samples { get; private set; }

        public async Task RunAsync(CancellationToken stop)
        {
            while (!stop.IsCancellationRequested)
            {
                foreach (var (shard, databases) in replicas)
                {
                    for (var r = 0; r < databases.Length; r++)
                    {
                        try
                        {
                            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
                            await using var command = databases[r].CreateCommand("select agent, shard, position from pr2_agent_mark");
                            await using var reader = await command.ExecuteReaderAsync(timeout.Token);
                            while (await reader.ReadAsync(timeout.Token))
                            {
                                var key = (shard, r, reader.GetString(0), reader.GetInt32(1));
                                var mark = reader.GetInt64(2);
                                if (_last.TryGetValue(key, out var previous) && mark < previous)
                                {
                                    Regressions.Add($"shard {shard} replica {r}: {key.Item3} of shard {key.Item4} {previous} -> {mark}");
                                }

                                _last[key] = Math.Max(mark, previous);
                                Samples++;
                            }
                        }
                        catch (Exception e) when (e is NpgsqlException or OperationCanceledException or TimeoutException)
                        {
                            // Not answering (its journal locked by the test): nothing to sample.
                        }
                    }
                }

                await Task.Delay(100, CancellationToken.None);
            }
        }
    }
}
