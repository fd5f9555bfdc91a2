using System.Collections.Concurrent;
using Npgsql;
using PR2.Client;
using PR2.Grains.Agents;
using PR2.Grains.Backup;
using PR2.Tests.Examples;
using PR2.Tests.Infrastructure;
using Xunit.Abstractions;

namespace PR2.Tests;

/// <summary>
/// <c>pr2 backup</c> and <c>pr2 restore</c>: a replica's server is lost with its disk while writers, the agents and two
/// rules keep working; an empty server takes its place, the replica comes back from a backup taken earlier, and anti-entropy
/// brings it up to date. Then everything the clients were told holds, the replicas hold the same entries and records, and
/// every rule's effects are there exactly once with views that count their own journal (so the restored marks and views
/// agreed with the restored journal). Also: what a restore refuses, and that a damaged backup never becomes a replica.
/// </summary>
public sealed class BackupRestoreTests(TwoPostgresServers servers, ITestOutputHelper output) : IClassFixture<TwoPostgresServers>, IDisposable
{
    private const int Shard = 1;

    private readonly string _backups = Path.Combine(Path.GetTempPath(), "pr2-backups", Guid.NewGuid().ToString("N")[..12]);

    public void Dispose()
    {
        if (Directory.Exists(_backups))
        {
            Directory.Delete(_backups, recursive: true);
        }
    }

    // The primary's server is the one lost: the writer fails over under load, and the silo that ran it had the lost
    // journal's last entries in memory (for its agents), which must not be taken for the restored journal's. Three
    // replicas acknowledging by quorum (two on server A), so that no acknowledged write was on the lost server alone.
    [Fact]
    public async Task A_replica_whose_server_was_lost_comes_back_from_a_backup_under_load_and_every_answer_holds()
    {
        var (settings, control, a, bName) = Topology("lost");
        var third = servers.A.CreateTopology("lost_c", Shard);
        settings[$"Pr2:Topology:Shards:{Shard}:Replicas:2"] = third.Settings[$"Pr2:Topology:Shards:{Shard}:Replicas:0"];
        settings[$"Pr2:Topology:Shards:{Shard}:AckPolicy"] = "Quorum";
        var c = third.Database(Shard);
        settings["Pr2:Silo:RuleAssemblies:0"] = typeof(TombstoneForCanceledItems).Assembly.Location;
        settings["Pr2:Silo:Rules:0"] = typeof(TombstoneForCanceledItems).FullName;
        var acked = new ConcurrentBag<WriteAck>();
        var history = new ClientHistory();
        var problems = new ConcurrentBag<string>();
        await using var cluster = await TestClusters.StartAsync(settings, silos: 2);
        var client = new Pr2Client(cluster.Client);
        await Retrying.CallAsync(() => client.PutRuleAsync(RuleWorkload.AuditRule.Replace("[1, 2, 3]", "[1]", StringComparison.Ordinal)));
        Assert.Equal(1, await Retrying.CallAsync(() => client.MovePrimaryAsync(Shard, 1)));

        using var stop = new CancellationTokenSource();
        var writers = Enumerable.Range(0, 6).Select(w => WriteAsync(client, w, acked, history, problems, stop.Token)).ToList();
        await WaitForAcksAsync(acked, 300);

        // Replica 1 (server B, the primary) is backed up while the writers go on.
        var backup = Path.Combine(_backups, "lost");
        var manifest = await client.BackupAsync(Shard, backup);
        Assert.Equal(1, manifest.Replica);
        output.WriteLine($"backup at position {manifest.Position}: {string.Join(", ", manifest.Tables.Select(t => $"{t.Name} {t.Rows}"))}");
        Assert.True(manifest.Position > 0);
        Assert.Equal(manifest.Position, manifest.Tables.Single(t => t.Name == "pr2_journal").Rows);
        Assert.True(manifest.Tables.Single(t => t.Name == "pr2_agent_mark").Rows > 0);

        await WaitForAcksAsync(acked, acked.Count + 300);
        await servers.B.ReplaceServerAsync();
        await WaitForAcksAsync(acked, acked.Count + 200);
        await using (var b0 = NpgsqlDataSource.Create(servers.B.Server.ConnectionString("postgres")))
        {
            await using var exists = b0.CreateCommand("select count(*) from pg_database where datname = $1");
            exists.Parameters.Add(new() { Value = bName });
            Assert.Equal(0L, (long)(await exists.ExecuteScalarAsync())!); // nothing recreated it: the restore does
        }

        Assert.NotEqual(1, (await client.GetStatusAsync()).Shards.Single(s => s.Shard == Shard).Replicas.Single(r => r.Primary).Index);
        var restored = await client.RestoreAsync(Shard, 1, backup);
        Assert.Empty(restored.Warnings);
        output.WriteLine($"restored at position {restored.Position} as {restored.ReplicaId}");
        Assert.Equal(manifest.Position, restored.Position);
        Assert.NotEqual(manifest.ReplicaId, restored.ReplicaId);
        Assert.False(restored.Replaced);

        await WaitForAcksAsync(acked, acked.Count + 300);
        await stop.CancelAsync();
        await Task.WhenAll(writers);

        var b = NpgsqlDataSource.Create(servers.B.Server.ConnectionString(bName));
        await using (b)
        {
            await Eventually.TrueAsync(async () =>
                (await client.GetStatusAsync()).Shards.Single(s => s.Shard == Shard).Replicas.All(r => r.Reachable && r.Behind == 0),
                TimeSpan.FromSeconds(90), "the restored replica caught up");
            var replicas = new Dictionary<int, NpgsqlDataSource[]> { [0] = [control], [Shard] = [a, b, c] };
            await Eventually.TrueAsync(() => RuleWorkload.SettledAsync(replicas), TimeSpan.FromSeconds(90), "both rules applied every entry on both replicas");
            foreach (var replica in new[] { 0, 1, 2 })
            {
                await client.CatchUpAsync(RecordsProjector.AgentName, Shard, replica: replica);
            }

            output.WriteLine($"acknowledged {acked.Count}, refused {history.Refused}");
            foreach (var problem in problems.Concat(history.FalseDuplicates).Concat(history.OrderReversals.Select(r => r.Problem)))
            {
                output.WriteLine("problem: " + problem);
            }

            Assert.Empty(history.FalseDuplicates);
            Assert.Empty(history.OrderReversals);
            Assert.Empty(await history.CommittedRefusalsAsync(a));
            Assert.Empty(problems);
            var (idsA, idsB) = (await ReplicaContents.MessageIdsAsync(a), (await ReplicaContents.MessageIdsAsync(b)).ToHashSet());
            Assert.Equal(0, acked.Count(ack => !idsA.Contains(ack.MessageId) || !idsB.Contains(ack.MessageId)));
            Assert.Equal(idsA.Count, idsA.Distinct().Count());
            var recordsA = await ReplicaContents.RecordsAsync(a);
            foreach (var (other, name) in new[] { (b, "replica 1"), (c, "replica 2") })
            {
                Assert.Equal(idsA.Order(), (await ReplicaContents.MessageIdsAsync(other)).Order());
                var records = await ReplicaContents.RecordsAsync(other);
                foreach (var differs in recordsA.Except(records).Take(5))
                {
                    output.WriteLine($"{name} differs from replica 0: {differs} there is {records.FirstOrDefault(r => r.Split('|')[0] == differs.Split('|')[0]) ?? "none"}");
                }

                Assert.Equal(recordsA, records);
            }

            var findings = await RuleWorkload.CheckAsync(replicas, control);
            output.WriteLine($"rules: {findings.Sources} sources; {string.Join("; ", findings.Examples.Take(5))}");
            Assert.True(findings.Sources > 0);
            Assert.Equal((0L, 0L, 0L, 0L, 0L), (findings.EffectsMissing, findings.EffectsDoubled, findings.EffectsConflicted, findings.ViewErrors, findings.DirectoryErrors));

            // Restored, it never passed for a primary (as actors on any silo judge it); the writer stayed where it failed over.
            Assert.False((await PR2.Grains.Storage.JournalStore.LatestVersionOnPrimaryAsync(b, new ActorRef(Shard, "item/0-0"))).Primary);
            Assert.NotEqual(1, (await client.GetStatusAsync()).Shards.Single(s => s.Shard == Shard).Replicas.Single(r => r.Primary).Index);
        }
    }

    [Fact]
    public async Task A_restore_refuses_what_it_must_and_a_damaged_backup_never_becomes_a_replica()
    {
        // Another cluster's shard 1 (same code, same service id), backed up.
        var foreign = Path.Combine(_backups, "foreign");
        await using (var other = await TestClusters.StartAsync(Topology("foreign").Settings))
        {
            var otherClient = new Pr2Client(other.Client);
            await Retrying.SendAsync(otherClient, new Message(Guid.NewGuid(), "test", new ActorRef(Shard, "account/foreign"), MessageKind.Insert, "{}"));
            await otherClient.BackupAsync(Shard, foreign);
        }

        var (settings, _, a, bName) = Topology("refusals");
        await using var cluster = await TestClusters.StartAsync(settings);
        var client = new Pr2Client(cluster.Client);
        for (var i = 0; i < 40; i++)
        {
            await Retrying.SendAsync(client, new Message(Guid.NewGuid(), "test", new ActorRef(Shard, $"account/{i % 7}"), i < 7 ? MessageKind.Insert : MessageKind.Modify,
                $$"""{"i": {{i}}}"""));
        }

        await Eventually.TrueAsync(async () =>
            (await client.GetStatusAsync()).Shards.Single(s => s.Shard == Shard).Replicas.All(r => r.Reachable && r.Behind == 0),
            TimeSpan.FromSeconds(30), "both replicas hold the entries");
        var backup = Path.Combine(_backups, "refusals");
        var manifest = await client.BackupAsync(Shard, backup); // the primary's
        Assert.Equal(0, manifest.Replica);
        Assert.Equal(40, manifest.Position);

        // The binary COPY files parse back to the rows the snapshot counted, however they are cut.
        var random = new Random(7);
        foreach (var table in manifest.Tables)
        {
            var bytes = await File.ReadAllBytesAsync(Path.Combine(backup, table.File));
            var counter = new CopyTupleCounter();
            for (var at = 0; at < bytes.Length;)
            {
                var length = Math.Min(random.Next(1, 9), bytes.Length - at);
                counter.Feed(bytes.AsSpan(at, length));
                at += length;
            }

            Assert.True(counter.Complete, table.Name);
            Assert.Equal(table.Rows, counter.Rows);
            var cut = new CopyTupleCounter();
            cut.Feed(bytes.AsSpan(0, bytes.Length - 2));
            Assert.False(cut.Complete);
        }

        var notEmpty = await Assert.ThrowsAsync<Pr2Exception>(() => client.BackupAsync(Shard, backup));
        Assert.Contains("not empty", notEmpty.Message, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(backup, "manifest.json"))); // the refused backup touched nothing

        // A live replica is not replaced unless asked, and the primary never is.
        var exists = await Assert.ThrowsAsync<Pr2Exception>(() => client.RestoreAsync(Shard, 1, backup));
        Assert.Equal(ErrorCode.BadMessage, exists.Code);
        Assert.Contains("exists", exists.Message, StringComparison.Ordinal);
        var primary = await Assert.ThrowsAsync<Pr2Exception>(() => client.RestoreAsync(Shard, 0, backup, replace: true));
        Assert.Contains("primary", primary.Message, StringComparison.Ordinal);
        var otherShard = await Assert.ThrowsAsync<Pr2Exception>(() => client.RestoreAsync(0, 0, backup, replace: true));
        Assert.Contains("not of shard 0", otherShard.Message, StringComparison.Ordinal);
        var otherCluster = await Assert.ThrowsAsync<Pr2Exception>(() => client.RestoreAsync(Shard, 1, foreign, replace: true));
        Assert.Equal(ErrorCode.BadMessage, otherCluster.Code);
        Assert.Contains("the backup is of cluster", otherCluster.Message, StringComparison.Ordinal);
        // Two clusters left at the default service id look alike by it: their shards' replicas tell them apart.
        var foreignManifest = Path.Combine(foreign, "manifest.json");
        var otherId = System.Text.Json.Nodes.JsonNode.Parse(await File.ReadAllTextAsync(foreignManifest))!["cluster"]!.GetValue<string>();
        await File.WriteAllTextAsync(foreignManifest, (await File.ReadAllTextAsync(foreignManifest)).Replace(otherId, manifest.Cluster, StringComparison.Ordinal));
        var sameServiceId = await Assert.ThrowsAsync<Pr2Exception>(() => client.RestoreAsync(Shard, 1, foreign, replace: true));
        Assert.Equal(ErrorCode.BadMessage, sameServiceId.Code);
        Assert.Contains("not a backup of this cluster's shard", sameServiceId.Message, StringComparison.Ordinal);

        // One flipped byte in the journal's file (same length): refused before anything commits, the replica unchanged.
        var damaged = Path.Combine(_backups, "damaged");
        Directory.CreateDirectory(damaged);
        foreach (var file in Directory.EnumerateFiles(backup))
        {
            File.Copy(file, Path.Combine(damaged, Path.GetFileName(file)));
        }

        var journalFile = Path.Combine(damaged, "pr2_journal.pgcopy");
        var journalBytes = await File.ReadAllBytesAsync(journalFile);
        journalBytes[journalBytes.Length / 2] ^= 0x20;
        await File.WriteAllBytesAsync(journalFile, journalBytes);
        await using var b = NpgsqlDataSource.Create(servers.B.Server.ConnectionString(bName));
        var idsBefore = await ReplicaContents.MessageIdsAsync(b);
        var refused = await Assert.ThrowsAsync<Pr2Exception>(() => client.RestoreAsync(Shard, 1, damaged, replace: true));
        output.WriteLine(refused.Message);
        Assert.Equal(ErrorCode.BadMessage, refused.Code);
        Assert.Contains("damaged", refused.Message, StringComparison.Ordinal);
        Assert.Equal(idsBefore, await ReplicaContents.MessageIdsAsync(b));
        Assert.Equal(0, await StagingDatabasesAsync());

        // Asked to, it replaces a replica that is not the primary, which then holds what the primary holds.
        var replaced = await client.RestoreAsync(Shard, 1, backup, replace: true);
        Assert.True(replaced.Replaced);
        await Retrying.SendAsync(client, new Message(Guid.NewGuid(), "test", new ActorRef(Shard, "account/after"), MessageKind.Insert, "{}"));
        await Eventually.TrueAsync(async () =>
            (await client.GetStatusAsync()).Shards.Single(s => s.Shard == Shard).Replicas.All(r => r.Reachable && r.Behind == 0),
            TimeSpan.FromSeconds(30), "the replaced replica caught up");
        await client.CatchUpAsync(RecordsProjector.AgentName, Shard, replica: 0);
        await client.CatchUpAsync(RecordsProjector.AgentName, Shard, replica: 1);
        await using var b2 = NpgsqlDataSource.Create(servers.B.Server.ConnectionString(bName));
        Assert.Equal((await ReplicaContents.MessageIdsAsync(a)).Order(), (await ReplicaContents.MessageIdsAsync(b2)).Order());
        Assert.Equal(await ReplicaContents.RecordsAsync(a), await ReplicaContents.RecordsAsync(b2));
        Assert.Equal(0, await StagingDatabasesAsync());
    }

    // A shard with one replica loses its server: everything written after the backup is gone, and the restore says how
    // much; the writer (still open on the lost database) finds another identity there and takes over; writes and strong
    // reads are served again; a message acknowledged after the backup, sent again, is written again, not a Duplicate.
    [Fact]
    public async Task A_shard_whose_only_replica_was_lost_comes_back_from_its_backup_and_says_what_was_lost()
    {
        var onA = servers.A.CreateTopology("only", 0);
        var onB = servers.B.CreateTopology("only_b", Shard);
        var replica = onB.Settings[$"Pr2:Topology:Shards:{Shard}:Replicas:0"]!;
        var settings = new Dictionary<string, string?>(onA.Settings) { [$"Pr2:Topology:Shards:{Shard}:Replicas:0"] = replica };
        await using var cluster = await TestClusters.StartAsync(settings);
        var client = new Pr2Client(cluster.Client);
        for (var i = 0; i < 20; i++)
        {
            await Retrying.SendAsync(client, new Message(Guid.NewGuid(), "test", new ActorRef(Shard, $"account/{i}"), MessageKind.Insert, $$"""{"i": {{i}}}"""));
        }

        var backup = Path.Combine(_backups, "only");
        Assert.Equal(20, (await client.BackupAsync(Shard, backup)).Position);
        var later = Enumerable.Range(0, 10).Select(i => new Message(Guid.NewGuid(), "test", new ActorRef(Shard, $"account/{i}"), MessageKind.Modify, """{"after": "backup"}""")).ToList();
        foreach (var message in later)
        {
            Assert.Equal(2, (await Retrying.SendAsync(client, message)).Version);
        }

        await servers.B.ReplaceServerAsync();
        var restored = await client.RestoreAsync(Shard, 0, backup);
        output.WriteLine(string.Join("; ", restored.Warnings));
        Assert.Contains(restored.Warnings, w => w.StartsWith("10 acknowledged entries of shard 1 are on no replica", StringComparison.Ordinal));

        var fresh = await Retrying.SendAsync(client, new Message(Guid.NewGuid(), "test", new ActorRef(Shard, "account/after-restore"), MessageKind.Insert, "{}"));
        Assert.Equal(21, fresh.Position);
        // The records view folded the restored journal, not the lost entries the writer had kept in memory for its silo's agents.
        await client.CatchUpAsync(RecordsProjector.AgentName, Shard, replica: 0);
        await using (var restoredDatabase = NpgsqlDataSource.Create(replica))
        {
            await using var folded = restoredDatabase.CreateCommand("select count(*) filter (where version > 1), count(*) from pr2_record");
            await using var reader = await folded.ExecuteReaderAsync();
            await reader.ReadAsync();
            Assert.Equal((0L, 21L), (reader.GetInt64(0), reader.GetInt64(1)));
        }

        var strong = await Retrying.CallAsync(() => client.ReadRecordAsync(Shard, "account/0", ReadConsistency.Strong));
        Assert.Equal(1, strong.Record.Version);
        var again = await Retrying.SendAsync(client, later[0]);
        Assert.False(again.Duplicate);
        Assert.Equal(2, again.Version);
    }

    [Fact]
    public async Task Every_table_of_a_replica_is_either_backed_up_or_named_as_left_out()
    {
        var topology = servers.A.CreateTopology("tables", 0);
        await using (await TestClusters.StartAsync(topology.Settings))
        {
            // Started once: the control replica has every table there is.
        }

        await using var command = topology.Database(0).CreateCommand("select relname from pg_class where relkind = 'r' and relnamespace = 'public'::regnamespace");
        var tables = new List<string>();
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                tables.Add(reader.GetString(0));
            }
        }

        Assert.Empty(tables.Except(BackupTables.Copied).Except(BackupTables.Left));
        Assert.Empty(BackupTables.Copied.Except(tables));
    }

    private async Task<long> StagingDatabasesAsync()
    {
        await using var b0 = NpgsqlDataSource.Create(servers.B.Server.ConnectionString("postgres"));
        await using var command = b0.CreateCommand("select count(*) from pg_database where datname like '%pr2_restore'");
        return (long)(await command.ExecuteScalarAsync())!;
    }

    // Shard 0 and replica 0 of shard 1 on server A, replica 1 of shard 1 on server B: B can be lost without the control shard.
    private (Dictionary<string, string?> Settings, NpgsqlDataSource Control, NpgsqlDataSource A, string BDatabase) Topology(string name)
    {
        var onA = servers.A.CreateTopology(name, 0, Shard);
        var onB = servers.B.CreateTopology($"{name}_b", Shard);
        var bReplica = onB.Settings[$"Pr2:Topology:Shards:{Shard}:Replicas:0"]!;
        var settings = new Dictionary<string, string?>(onA.Settings) { [$"Pr2:Topology:Shards:{Shard}:Replicas:1"] = bReplica };
        return (settings, onA.Database(0), onA.Database(Shard), new NpgsqlConnectionStringBuilder(bReplica).Database!);
    }

    // One writer walks through its own items: insert, modify, and every third one canceled; every answer goes into the history.
    private static async Task WriteAsync(Pr2Client client, int writer, ConcurrentBag<WriteAck> acked, ClientHistory history,
        ConcurrentBag<string> problems, CancellationToken stop)
    {
        for (var item = 0; !stop.IsCancellationRequested; item++)
        {
            var actor = new ActorRef(Shard, $"item/{writer}-{item}");
            var kinds = item % 3 == 0 ? new[] { MessageKind.Insert, MessageKind.Modify, MessageKind.Cancel } : [MessageKind.Insert, MessageKind.Modify];
            foreach (var kind in kinds)
            {
                var message = new Message(Guid.NewGuid(), $"writer-{writer}", actor, kind, kind == MessageKind.Cancel ? "{}" : $$"""{"item": {{item}}}""");
                for (var call = 1; ; call++)
                {
                    try
                    {
                        var ack = await client.SendAsync(message);
                        history.Acknowledged(message, ack, call);
                        acked.Add(ack);
                        break;
                    }
                    catch (Pr2Exception e) when (e.IsRetriable && call < 50)
                    {
                        await Task.Delay(100, CancellationToken.None);
                    }
                    catch (Exception e)
                    {
                        problems.Add($"{message.Receiver} call {call}: {e.GetType().Name} {e.Message}");
                        history.Refusal(message.MessageId, e.Message);
                        return;
                    }
                }
            }
        }
    }

    private static Task WaitForAcksAsync(ConcurrentBag<WriteAck> acked, int count) =>
        Eventually.TrueAsync(() => Task.FromResult(acked.Count >= count), TimeSpan.FromSeconds(60), $"{count} writes acknowledged");
}
