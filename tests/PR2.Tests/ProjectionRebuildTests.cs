using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using PR2.Client;
using PR2.Grains.Agents;
using PR2.Tests.Infrastructure;
using Xunit.Abstractions;

namespace PR2.Tests;

/// <summary>
/// The records view rebuilt from the journal (<c>pr2 projections rebuild</c>) while writers write and readers read: every
/// replica folds its journal into a shadow and swaps it in atomically. No write fails, what each client was told holds,
/// every read is exactly the fold of that replica's journal up to the mark the read reports (no reader sees a half-built
/// view, nor a view that lags its mark), the rebuilt view repairs a damaged one, and a rebuild goes on after the silo
/// running it is killed.
/// </summary>
public sealed class ProjectionRebuildTests(TwoPostgresServers servers, ITestOutputHelper output) : IClassFixture<TwoPostgresServers>
{
    private const int Shard = 1;

    [Fact]
    public async Task A_records_view_rebuilt_under_load_is_swapped_in_whole_and_every_read_is_the_fold_at_its_mark()
    {
        var (settings, a, b) = servers.TwoReplicaShard("rebuild", Shard, "Quorum");
        await using var cluster = await TestClusters.StartAsync(settings, silos: 2);
        var client = new Pr2Client(cluster.Client);
        await FillAsync(client, batches: 30);
        for (var replica = 0; replica < 2; replica++)
        {
            await client.CatchUpAsync(RecordsProjector.AgentName, Shard, replica);
        }

        // A damaged view (as a fold bug, since fixed, would leave it): wrong states, and rows gone. Only a fold from the
        // journal gives them back.
        foreach (var replica in new[] { a, b })
        {
            await Sql.ExecuteAsync(replica, """update pr2_record set state = '{"damaged": true}' where actor_id like 'fill/2-%'""");
            await Sql.ExecuteAsync(replica, "delete from pr2_record where actor_id like 'fill/3-%'");
        }

        var acked = new ConcurrentBag<WriteAck>();
        var history = new ClientHistory();
        var problems = new ConcurrentBag<string>();
        var reads = new ConcurrentBag<ViewRead>();
        using var stop = new CancellationTokenSource();
        var writers = Enumerable.Range(0, 12).Select(w => SteadyWriters.WriteAsync(client, Shard, w, acked, history, problems, stop.Token)).ToList();
        var strong = SteadyWriters.ReadStronglyAsync(client, Shard, history, stop.Token);
        var viewReaders = Enumerable.Range(0, 2).Select(_ => ReadViewsAsync(client, reads, problems, stop.Token)).ToList();
        await SteadyWriters.WaitForAcksAsync(acked, 150);

        var progress = new RecordedProgress();
        var status = await client.RebuildProjectionAsync(Shard, "records", progress);
        output.WriteLine($"rebuilt: {string.Join("; ", status.Replicas)}; progress reports {progress.Reports.Count}, last {progress.Reports.LastOrDefault()}");
        Assert.All(status.Replicas, r => Assert.Equal(("done", 1L), (r.State, r.Generation)));
        Assert.All(status.Replicas, r => Assert.True(r.SwappedPosition >= 3000, $"replica {r.Replica} swapped in at {r.SwappedPosition}"));
        Assert.True(progress.Reports.Max(p => p.Rows) >= 6000, "progress counted the positions folded on both replicas");

        // Reads and writes go on over the rebuilt view.
        await SteadyWriters.WaitForAcksAsync(acked, acked.Count + 150);
        await Eventually.TrueAsync(() => Task.FromResult(reads.Count(r => r.Mark > status.Replicas.Max(s => s.SwappedPosition)) > 20),
            TimeSpan.FromSeconds(30), "reads answered by the rebuilt view");
        await stop.CancelAsync();
        await Task.WhenAll(writers);
        await strong;
        await Task.WhenAll(viewReaders);
        output.WriteLine($"acknowledged {acked.Count}, strong reads {history.StrongReads}, view reads {reads.Count}");
        foreach (var problem in problems.Concat(history.FalseDuplicates).Concat(history.OrderReversals.Select(r => r.Problem)).Concat(history.StaleStrongReads))
        {
            output.WriteLine("problem: " + problem);
        }

        Assert.Empty(problems);
        Assert.Empty(history.FalseDuplicates);
        Assert.Empty(history.OrderReversals);
        Assert.Empty(history.StaleStrongReads);

        // Every read is the fold of its replica's journal at the mark it reported: its version counts the actor's entries
        // at or before that mark there. A half-built view read beside the old mark, or a swap that left out its last
        // entries, shows as a version lower than the count.
        var replicas = new[] { a, b };
        var wrong = new List<string>();
        foreach (var group in reads.GroupBy(r => r.Replica))
        {
            var positions = await ActorPositionsAsync(replicas[group.Key]);
            wrong.AddRange(group
                .Where(r => r.Version != positions.GetValueOrDefault(r.ActorId, []).Count(p => p <= r.Mark))
                .Select(r => $"replica {r.Replica} mark {r.Mark}: {r.ActorId} version {r.Version}, entries {positions.GetValueOrDefault(r.ActorId, []).Count(p => p <= r.Mark)}"));
        }

        output.WriteLine($"view reads per replica: {string.Join(", ", reads.GroupBy(r => r.Replica).OrderBy(g => g.Key).Select(g => $"{g.Key}: {g.Count()}"))}");
        Assert.Equal([0, 1], reads.Select(r => r.Replica).Distinct().Order());
        Assert.True(wrong.Count == 0, $"{wrong.Count} of {reads.Count} reads were not the fold at their mark, e.g. {string.Join("; ", wrong.Take(5))}");

        // The rebuilt views: the same on both replicas, the damage gone, every actor of the journal there, the live table
        // with its indexes under their own names, no shadow left.
        await Eventually.TrueAsync(async () =>
            (await client.GetStatusAsync()).Shards.Single(s => s.Shard == Shard).Replicas.All(r => r.Reachable && r.Behind == 0),
            TimeSpan.FromSeconds(60), "both replicas hold the same entries");
        for (var replica = 0; replica < 2; replica++)
        {
            await client.CatchUpAsync(RecordsProjector.AgentName, Shard, replica);
        }

        var records = await ReplicaContents.RecordsAsync(a);
        Assert.Equal(records, await ReplicaContents.RecordsAsync(b));
        foreach (var replica in replicas)
        {
            Assert.Equal(0L, await Sql.ScalarAsync(replica, """select count(*) from pr2_record where state @> '{"damaged": true}'"""));
            Assert.Equal(await Sql.ScalarAsync(replica, "select count(distinct actor_id) from pr2_journal"), await Sql.ScalarAsync(replica, "select count(*) from pr2_record"));
            Assert.Equal(0L, await Sql.ScalarAsync(replica, """
                select count(*) from pr2_record r
                where r.version <> (select count(*) from pr2_journal j where j.actor_id = r.actor_id)
                """));
            Assert.Equal("pr2_record_pkey,pr2_record_type", await Sql.TextAsync(replica,
                "select string_agg(indexname, ',' order by indexname) from pg_indexes where tablename = 'pr2_record'"));
            Assert.Equal(0L, await Sql.ScalarAsync(replica, "select count(*) from pg_class where relname = 'pr2_record_next'"));
        }

        var fill = await client.ReadRecordAsync(Shard, "fill/2-5", ReadConsistency.Eventual);
        Assert.Equal("""{"n":5}""", fill.Record.State);
    }

    [Fact]
    public async Task A_rebuild_goes_on_after_its_silo_is_killed_and_bad_requests_are_refused_clearly()
    {
        var (settings, a, b) = servers.TwoReplicaShard("rebuild_kill", Shard, "Quorum");
        settings["Pr2:Silo:Membership"] = servers.A.Server.ConnectionString($"rebuild_members_{Guid.NewGuid():N}"[..30]);
        List<ProcessSilo> silos = [await ProcessSilo.StartAsync("silo-0", settings), await ProcessSilo.StartAsync("silo-1", settings)];
        try
        {
            using var host = await ProcessSilo.StartClientAsync(settings["Pr2:Silo:Membership"]!);
            var client = new Pr2Client(host.Services.GetRequiredService<IClusterClient>());
            await FillAsync(client, batches: 300);

            // Refusals: what cannot be rebuilt says so, and nothing starts.
            var directory = await Assert.ThrowsAsync<Pr2Exception>(() => client.RebuildProjectionAsync(Shard, ObjectDirectoryProjector.AgentName));
            Assert.Equal(ErrorCode.BadMessage, directory.Code);
            Assert.Contains("rebuilt as a whole, through shard 0", directory.Message, StringComparison.Ordinal);
            var unknown = await Assert.ThrowsAsync<Pr2Exception>(() => client.RebuildProjectionAsync(Shard, "no-such-view"));
            Assert.Equal(ErrorCode.BadMessage, unknown.Code);
            var noShard = await Assert.ThrowsAsync<Pr2Exception>(() => client.RebuildProjectionAsync(77, "records"));
            Assert.Equal(ErrorCode.UnknownShard, noShard.Code);
            Assert.All((await client.GetProjectionAsync(Shard, "records")).Replicas, r => Assert.Equal(("live", 0L), (r.State, r.Generation)));
            var listed = await client.ListProjectionsAsync(Shard);
            Assert.Contains(listed, p => p.Projection == "records" && p.Rebuildable);
            Assert.Contains(listed, p => p.Projection == ObjectDirectoryProjector.AgentName && !p.Rebuildable && p.Replicas.Count == 2);

            // Started, then the silo folding replica 0's rebuild is killed part way (SIGKILL); the other silo goes on.
            var cluster = host.Services.GetRequiredService<IClusterClient>();
            var started = await cluster.GetGrain<IProjectionsGrain>(Shard).Rebuild("records");
            Assert.All(started.Replicas, r => Assert.Equal(("building", 1L), (r.State, r.Generation)));
            await Eventually.TrueAsync(async () => await ShadowMarkAsync(a) > 0, TimeSpan.FromSeconds(30), "the rebuild folding");
            var running = await cluster.GetGrain<IManagementGrain>(0).GetActivationAddress(cluster.GetGrain<IProjectionRebuildGrain>(AgentCatalog.Key("records", Shard, 0)));
            var victim = silos.Single(s => s.SiloPort == running!.Endpoint.Port);
            victim.Kill();
            var folded = await ShadowMarkAsync(a);
            var head = await Sql.ScalarAsync(a, "select position from pr2_writer_head");
            output.WriteLine($"killed {victim.Name} with {folded} of {head} folded on replica 0");
            Assert.True(folded < head, $"the rebuild had not finished when its silo was killed ({folded} of {head})");

            // The other silo goes on from the shadow's mark: the same generation, not a new rebuild.
            var status = await Retrying.CallAsync(() => client.RebuildProjectionAsync(Shard, "records"));
            output.WriteLine($"after the kill: {string.Join("; ", status.Replicas)}");
            Assert.All(status.Replicas, r => Assert.Equal(("done", 1L), (r.State, r.Generation)));
            foreach (var replica in new[] { a, b })
            {
                Assert.Equal(await Sql.ScalarAsync(replica, "select count(distinct actor_id) from pr2_journal"), await Sql.ScalarAsync(replica, "select count(*) from pr2_record"));
                Assert.Equal(0L, await Sql.ScalarAsync(replica, """
                    select count(*) from pr2_record r
                    where r.version <> (select count(*) from pr2_journal j where j.actor_id = r.actor_id)
                    """));
            }

            // A second rebuild starts over (a new generation) and is swapped in too.
            var again = await client.RebuildProjectionAsync(Shard, "records");
            Assert.All(again.Replicas, r => Assert.Equal(("done", 2L), (r.State, r.Generation)));
        }
        finally
        {
            silos.ForEach(s => s.Dispose());
        }
    }

    [Fact]
    public async Task A_rebuild_folds_no_faster_than_its_configured_rate_and_a_canceled_one_leaves_the_live_view_as_it_was()
    {
        var (settings, a, b) = servers.TwoReplicaShard("rebuild_paced", Shard, "Quorum");
        settings["Pr2:Projections:RebuildEntriesPerSecond"] = "2000";
        await using var cluster = await TestClusters.StartAsync(settings);
        var client = new Pr2Client(cluster.Client);
        await FillAsync(client, batches: 60);
        var actors = await Sql.ScalarAsync(a, "select count(distinct actor_id) from pr2_journal");

        // The live view damaged on replica 0 (a record lost): a canceled rebuild leaves it so, a finished one mends it.
        await client.CatchUpAsync(RecordsProjector.AgentName, Shard, replica: 0);
        await Sql.ExecuteAsync(a, "delete from pr2_record where actor_id = 'fill/7-7'");

        // Canceled while both replicas fold: each drops its shadow and keeps its live view, and the rebuild's caller is told.
        var waiting = client.RebuildProjectionAsync(Shard, "records");
        await Eventually.TrueAsync(async () => (await client.GetProjectionAsync(Shard, "records")).Replicas.All(r => r is { State: "building", Folded: > 0 }),
            TimeSpan.FromSeconds(20), "both replicas fold the rebuild");
        var canceled = await client.CancelProjectionRebuildAsync(Shard, "records");
        Assert.All(canceled.Replicas, r => Assert.Equal(("canceled", 1L), (r.State, r.Generation)));
        var told = await Assert.ThrowsAsync<Pr2Exception>(() => waiting);
        Assert.Equal(ErrorCode.OperationCanceled, told.Code);
        Assert.False(told.IsRetriable);
        foreach (var replica in new[] { a, b })
        {
            Assert.Equal(0, await Sql.ScalarAsync(replica, "select count(*) from pg_class where relname = 'pr2_record_next'"));
        }

        Assert.Equal(actors - 1, await Sql.ScalarAsync(a, "select count(*) from pr2_record"));
        Assert.All((await client.CancelProjectionRebuildAsync(Shard, "records")).Replicas, r => Assert.Equal(("canceled", 1L), (r.State, r.Generation)));

        // The live view goes on with writes (the records agent was never stopped), and nothing of the canceled fold is left
        // to swap in: it stays canceled.
        await Retrying.SendAsync(client, new Message(Guid.NewGuid(), "test", new ActorRef(Shard, "fill/after-cancel"), MessageKind.Insert, "{}"));
        await client.CatchUpAsync(RecordsProjector.AgentName, Shard, replica: 0);
        Assert.Equal(actors, await Sql.ScalarAsync(a, "select count(*) from pr2_record"));
        Assert.All((await client.GetProjectionAsync(Shard, "records")).Replicas, r => Assert.Equal("canceled", r.State));

        // 6,000 entries per replica at 2,000 a second: three seconds at least (unpaced, well under one here).
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var status = await client.RebuildProjectionAsync(Shard, "records");
        output.WriteLine($"paced rebuild of {status.Replicas.Min(r => r.SwappedPosition)}+ entries per replica took {clock.Elapsed.TotalSeconds:0.0} s");
        Assert.All(status.Replicas, r => Assert.Equal(("done", 2L), (r.State, r.Generation)));
        Assert.All(status.Replicas, r => Assert.True(r.SwappedPosition >= 6000, $"replica {r.Replica} swapped in at {r.SwappedPosition}"));
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(2.5), $"the rebuild took {clock.Elapsed.TotalSeconds:0.0} s");
        Assert.Equal(actors + 1, await Sql.ScalarAsync(a, "select count(*) from pr2_record"));
    }

    [Fact]
    public async Task A_rules_views_rebuilt_under_load_equal_the_fold_of_the_journal_and_nothing_is_sent_twice()
    {
        var (settings, a, b) = servers.TwoReplicaShard("rebuild_rule", Shard, "Quorum");
        await using var cluster = await TestClusters.StartAsync(settings);
        var client = new Pr2Client(cluster.Client);
        // Counts orders in one document, keeps one document per order, and tells a "seen" actor of each (a send that a
        // rebuild must never repeat).
        await Retrying.CallAsync(() => client.PutRuleAsync("""
            {
              "name": "count-orders",
              "on": {"type": "order", "kinds": ["insert"], "shards": [@shard@]},
              "do": [
                {"send": {"shard": @shard@, "actor": "seen/{entry.key}", "kind": "insert", "body": {"order": "{entry.actor}"}}},
                {"view": {"name": "orders", "key": "all", "add": {"n": 1}}},
                {"view": {"name": "orders", "key": "{entry.key}", "set": {"id": "{entry.messageId}"}}}
              ],
              "start": "beginning"
            }
            """.Replace("@shard@", $"{Shard}", StringComparison.Ordinal)));

        using var stop = new CancellationTokenSource();
        var problems = new ConcurrentBag<string>();
        var sent = 0;
        // Eight writers: the live rule's mark moves on between the rebuild's last fold and its swap, which folds the rest.
        var writers = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                try
                {
                    await Retrying.SendAsync(client, new Message(Guid.NewGuid(), "test", new ActorRef(Shard, $"order/{w}-{i}"), MessageKind.Insert, $$"""{"i": {{i}}}"""));
                    Interlocked.Increment(ref sent);
                }
                catch (Exception e)
                {
                    problems.Add($"order/{w}-{i}: {e.GetType().Name} {e.Message}");
                    return;
                }
            }
        })).ToList();
        await Eventually.TrueAsync(() => Task.FromResult(Volatile.Read(ref sent) >= 300), TimeSpan.FromSeconds(60), "300 orders written");

        // The views damaged on both replicas: the count wrong, one order's document gone, a stray document of the rule's.
        foreach (var replica in new[] { a, b })
        {
            await Sql.ExecuteAsync(replica, """
                update pr2_view set doc = '{"n": -1000}' where view = 'orders' and key = 'all';
                delete from pr2_view where view = 'orders' and key = '0-7';
                insert into pr2_view (view, key, doc, rule, position) values ('orders', 'stray', '{}', 'rule-count-orders', 1);
                """);
        }

        var status = await client.RebuildProjectionAsync(Shard, "rule-count-orders");
        output.WriteLine("swapped in at " + string.Join(", ", status.Replicas.Select(r => $"replica {r.Replica}: {r.SwappedPosition} (head {r.Head})")));
        Assert.All(status.Replicas, r => Assert.Equal(("done", 1L), (r.State, r.Generation)));
        await Eventually.TrueAsync(() => Task.FromResult(Volatile.Read(ref sent) >= 400), TimeSpan.FromSeconds(60), "100 orders more written");
        await stop.CancelAsync();
        await Task.WhenAll(writers);
        Assert.Empty(problems);
        await Eventually.TrueAsync(async () =>
        {
            foreach (var replica in new[] { a, b })
            {
                var head = await Sql.ScalarAsync(replica, "select coalesce(max(position), 0) from pr2_journal");
                if (await Sql.ScalarAsync(replica, $"select count(*) from pr2_agent_mark where agent like 'rule-count-orders%' and agent not like '%~next' and position = {head}") != 1
                    || await Sql.ScalarAsync(replica, "select count(*) from pr2_outbox where delivered_at is null and failure is null") != 0)
                {
                    return false;
                }
            }

            return await Sql.ScalarAsync(a, "select count(*) from pr2_journal") == await Sql.ScalarAsync(b, "select count(*) from pr2_journal");
        }, TimeSpan.FromSeconds(60), "the rule applied every entry on both replicas and delivered every message");

        foreach (var (replica, name) in new[] { (a, "replica 0"), (b, "replica 1") })
        {
            var orders = await Sql.ScalarAsync(replica, "select count(*) from pr2_journal where actor_id like 'order/%' and kind = 1");
            output.WriteLine($"{name}: {orders} orders, view says {await Sql.TextAsync(replica, "select doc::text from pr2_view where view = 'orders' and key = 'all'")}");
            Assert.Equal(orders, await Sql.ScalarAsync(replica, "select (doc->>'n')::bigint from pr2_view where view = 'orders' and key = 'all'"));
            Assert.Equal(orders, await Sql.ScalarAsync(replica, "select count(*) from pr2_view where view = 'orders' and key <> 'all'"));
            Assert.Equal(0, await Sql.ScalarAsync(replica, "select count(*) from pr2_view where key = 'stray'"));
            Assert.Equal(0, await Sql.ScalarAsync(replica, "select count(*) from pr2_view_rebuild"));
            // One message per order from each replica's rule (the same ids), one "seen" actor per order in the journal.
            Assert.Equal(orders, await Sql.ScalarAsync(replica, "select count(*) from pr2_outbox"));
            Assert.Equal(orders, await Sql.ScalarAsync(replica, "select count(*) from pr2_journal where actor_id like 'seen/%'"));
        }
    }

    [Fact]
    public async Task A_rule_fixed_and_rebuilt_takes_its_parked_entries_in_once_and_leaves_none_to_retry()
    {
        var (settings, a, b) = servers.TwoReplicaShard("rebuild_rule_fix", Shard, "Primary");
        await using var cluster = await TestClusters.StartAsync(settings);
        var client = new Pr2Client(cluster.Client);
        const string Broken = """
            {"name": "sum-orders", "on": {"type": "order", "kinds": ["insert"], "shards": [@shard@]},
             "do": [{"view": {"name": "sums", "key": "all", "add": {"n": "{body.amount}"}}}], "start": "beginning"}
            """;
        await Retrying.CallAsync(() => client.PutRuleAsync(Broken.Replace("@shard@", $"{Shard}", StringComparison.Ordinal)));

        // Every fifth order's amount is not a number: the rule parks it.
        for (var i = 0; i < 50; i++)
        {
            var amount = i % 5 == 0 ? "\"none\"" : "1";
            await Retrying.SendAsync(client, new Message(Guid.NewGuid(), "test", new ActorRef(Shard, $"order/{i}"), MessageKind.Insert, $$"""{"amount": {{amount}}}"""));
        }

        const string Parked = "select count(*) from pr2_dead_letter where rule like 'rule-sum-orders%' and rule not like '%~next'";
        await Eventually.TrueAsync(async () => await Sql.ScalarAsync(a, Parked) == 10 && await Sql.ScalarAsync(b, Parked) == 10,
            TimeSpan.FromSeconds(30), "ten orders parked on each replica");

        // Fixed in place (counting orders), then rebuilt: the fold applies the ten it parked before, and they are parked no more.
        await Retrying.CallAsync(() => client.PutRuleAsync(Broken.Replace("@shard@", $"{Shard}", StringComparison.Ordinal).Replace("\"{body.amount}\"", "1", StringComparison.Ordinal)));
        var status = await client.RebuildProjectionAsync(Shard, "rule-sum-orders");
        Assert.All(status.Replicas, r => Assert.Equal("done", r.State));
        foreach (var replica in new[] { a, b })
        {
            Assert.Equal(0, await Sql.ScalarAsync(replica, Parked));
            Assert.Equal(50, await Sql.ScalarAsync(replica, "select (doc->>'n')::bigint from pr2_view where view = 'sums' and key = 'all'"));
        }

        // Nothing left to retry: asking changes nothing.
        await client.RetryParkedAsync("sum-orders");
        await Retrying.SendAsync(client, new Message(Guid.NewGuid(), "test", new ActorRef(Shard, "order/last"), MessageKind.Insert, """{"amount": 1}"""));
        await Eventually.TrueAsync(async () => await Sql.ScalarAsync(a, "select (doc->>'n')::bigint from pr2_view where view = 'sums' and key = 'all'") == 51,
            TimeSpan.FromSeconds(30), "the fixed rule counts the next order");
        Assert.Equal(51, await Sql.ScalarAsync(a, "select (doc->>'n')::bigint from pr2_view where view = 'sums' and key = 'all'"));
    }

    private sealed record ViewRead(int Replica, long Mark, string ActorId, long Version);

    // Pages of the writers' actors from the primary (strong) and from any replica (eventual), and one filled actor.
    private static async Task ReadViewsAsync(Pr2Client client, ConcurrentBag<ViewRead> reads, ConcurrentBag<string> problems, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                foreach (var consistency in new[] { ReadConsistency.Strong, ReadConsistency.Eventual })
                {
                    var page = await client.QueryRecordsAsync(Shard, "account", limit: 100, consistency: consistency);
                    foreach (var record in page.Records)
                    {
                        reads.Add(new ViewRead(page.Replica, page.Mark, record.Actor.ActorId, record.Version));
                    }
                }

                var one = await client.ReadRecordAsync(Shard, "fill/4-4", ReadConsistency.Eventual);
                reads.Add(new ViewRead(one.Replica, one.Mark, "fill/4-4", one.Record.Version));
            }
            catch (Exception e)
            {
                problems.Add($"view read: {e.GetType().Name} {e.Message}");
                return;
            }
        }
    }

    private static async Task FillAsync(Pr2Client client, int batches)
    {
        for (var batch = 0; batch < batches; batch++)
        {
            // The same messages on every try: a retry of a batch whose answer was lost gets its first acknowledgement.
            List<Message> messages = [.. Enumerable.Range(0, 100).Select(i =>
                new Message(Guid.NewGuid(), "fill", new ActorRef(Shard, $"fill/{batch}-{i}"), MessageKind.Insert, $$"""{"n": {{i}}}"""))];
            await Retrying.CallAsync(() => client.SendBatchAsync(Shard, messages));
        }
    }

    private static async Task<Dictionary<string, List<long>>> ActorPositionsAsync(NpgsqlDataSource replica)
    {
        var positions = new Dictionary<string, List<long>>(StringComparer.Ordinal);
        await using var command = replica.CreateCommand("select actor_id, position from pr2_journal");
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            var actor = reader.GetString(0);
            if (!positions.TryGetValue(actor, out var list))
            {
                positions[actor] = list = [];
            }

            list.Add(reader.GetInt64(1));
        }

        return positions;
    }

    private static async Task<long> ShadowMarkAsync(NpgsqlDataSource replica) =>
        await Sql.ScalarAsync(replica, $"select coalesce(max(position), 0) from pr2_agent_mark where agent = '{RecordsProjector.ShadowName}'");
}
