using System.Collections.Concurrent;
using Npgsql;
using PR2.Client;
using PR2.Grains.Agents;
using PR2.Tests.Infrastructure;
using Xunit.Abstractions;

namespace PR2.Tests;

/// <summary>
/// The object directory rebuilt from every shard's journals (<c>pr2 projections rebuild 0 object-directory</c>) while writers
/// insert and cancel actors in two shards (one of them with two replicas): the damaged live directory (rows gone, statuses
/// wrong, actors that never existed) is swapped for one that lists exactly the actors the journals hold, with their status,
/// and every write a client was told succeeded is in it.
/// </summary>
public sealed class ObjectDirectoryRebuildTests(TwoPostgresServers servers, ITestOutputHelper output) : IClassFixture<TwoPostgresServers>
{
    [Fact]
    public async Task A_damaged_directory_rebuilt_under_writes_lists_exactly_the_actors_of_the_journals()
    {
        var (settings, a, b) = servers.TwoReplicaShard("dirrebuild", 1, "Quorum");
        var two = servers.B.CreateTopology("dirrebuild_two", 2);
        settings["Pr2:Topology:Shards:2:Replicas:0"] = two.Settings["Pr2:Topology:Shards:2:Replicas:0"];
        await using var control = NpgsqlDataSource.Create(settings["Pr2:Topology:Shards:0:Replicas:0"]!);
        await using var cluster = await TestClusters.StartAsync(settings);
        var client = new Pr2Client(cluster.Client);

        var inserted = new ConcurrentDictionary<(int Shard, string Actor), bool>();
        var canceled = new ConcurrentDictionary<(int Shard, string Actor), bool>();
        foreach (var shard in new[] { 1, 2 })
        {
            for (var i = 0; i < 300; i++)
            {
                await WriteAsync(client, shard, $"item/fill-{i}", MessageKind.Insert, inserted, canceled);
            }

            for (var i = 0; i < 300; i += 7)
            {
                await WriteAsync(client, shard, $"item/fill-{i}", MessageKind.Cancel, inserted, canceled);
            }
        }

        await CatchUpAsync(client);

        // Damage as a bug (or a lost primary) would leave it: rows gone, a status wrong both ways, actors that never were.
        await Sql.ExecuteAsync(control, "delete from pr2_object_directory where shard = 1 and actor_id like 'item/fill-1%'");
        await Sql.ExecuteAsync(control, "update pr2_object_directory set status = 3 - status where shard = 2 and actor_id like 'item/fill-2%'");
        await Sql.ExecuteAsync(control, """
            insert into pr2_object_directory (shard, actor_id, actor_type, status, first_position)
            select 2, 'ghost/' || g, 'ghost', 1, g from generate_series(1, 25) g
            """);
        Assert.NotEqual(await JournalsSayAsync([(1, a), (1, b), (2, two.Database(2))]), await DirectorySaysAsync(control));

        // Rows and a mark of a shard the directory does not list (as a shard removed would leave): not the rebuild's to
        // replace, and no reason for it to wait.
        await Sql.ExecuteAsync(control, """
            insert into pr2_object_directory (shard, actor_id, actor_type, status, first_position)
            select 77, 'other/' || g, 'other', 1, g from generate_series(1, 5) g;
            insert into pr2_agent_mark (agent, shard, position) values ('object-directory@0', 77, 5)
            """);

        // Writers insert and cancel in both shards during the rebuild.
        var problems = new ConcurrentBag<string>();
        using var stop = new CancellationTokenSource();
        var writers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            for (var n = 0; !stop.IsCancellationRequested; n++)
            {
                var shard = 1 + (n + w) % 2;
                try
                {
                    await WriteAsync(client, shard, $"item/w{w}-{n}", MessageKind.Insert, inserted, canceled);
                    if (n % 3 == 0)
                    {
                        await WriteAsync(client, shard, $"item/w{w}-{n}", MessageKind.Cancel, inserted, canceled);
                    }
                }
                catch (Exception e)
                {
                    problems.Add($"writer {w}: {e.GetType().Name} {e.Message}");
                    return;
                }
            }
        })).ToList();
        await Eventually.TrueAsync(() => Task.FromResult(inserted.Count > 700), TimeSpan.FromSeconds(60), "writes going on");

        // Only through shard 0, which keeps it.
        var elsewhere = await Assert.ThrowsAsync<Pr2Exception>(() => client.RebuildProjectionAsync(1, ObjectDirectoryProjector.AgentName));
        Assert.Equal(ErrorCode.BadMessage, elsewhere.Code);
        Assert.Contains("through shard 0", elsewhere.Message, StringComparison.Ordinal);

        var progress = new RecordedProgress();
        var status = await client.RebuildProjectionAsync(0, ObjectDirectoryProjector.AgentName, progress);
        output.WriteLine($"rebuilt: {string.Join("; ", status.Replicas)}; progress reports {progress.Reports.Count}, last {progress.Reports.LastOrDefault()}");
        Assert.Equal(("done", 1L), (status.Replicas.Single().State, status.Replicas.Single().Generation));
        Assert.True(status.Replicas.Single().SwappedPosition >= 1200, $"swapped in at {status.Replicas.Single().SwappedPosition}");

        var more = inserted.Count + 200;
        await Eventually.TrueAsync(() => Task.FromResult(inserted.Count > more), TimeSpan.FromSeconds(60), "writes going on after the swap");
        await stop.CancelAsync();
        await Task.WhenAll(writers);
        Assert.Empty(problems);

        // Once the journals agree and the live directory has followed them, it lists exactly their actors; every insert and
        // cancel a client was told of is there.
        await Eventually.TrueAsync(async () =>
            (await client.GetStatusAsync()).Shards.Single(s => s.Shard == 1).Replicas.All(r => r.Reachable && r.Behind == 0),
            TimeSpan.FromSeconds(60), "shard 1's replicas hold the same entries");
        await CatchUpAsync(client);
        var journals = await JournalsSayAsync([(0, control), (1, a), (1, b), (2, two.Database(2))]);
        var directory = await DirectorySaysAsync(control);
        Assert.Equal(5, directory.RemoveWhere(row => row.Shard == 77));
        var missing = journals.Except(directory).ToList();
        var extra = directory.Except(journals).ToList();
        Assert.True(missing.Count == 0 && extra.Count == 0,
            $"directory vs journals: {missing.Count} missing (e.g. {string.Join(", ", missing.Take(5))}), {extra.Count} extra (e.g. {string.Join(", ", extra.Take(5))})");
        Assert.All(inserted.Keys, k => Assert.Contains((k.Shard, k.Actor, canceled.ContainsKey(k) ? 2 : 1), directory));
        Assert.Equal(0L, await Sql.ScalarAsync(control, "select count(*) from pr2_object_directory_rebuild"));
        Assert.Equal(0L, await Sql.ScalarAsync(control, $"select count(*) from pr2_agent_mark where agent like '{ObjectDirectoryProjector.ShadowName}%'"));
    }

    [Fact]
    public async Task A_canceled_directory_rebuild_keeps_the_live_directory_and_the_next_one_mends_it()
    {
        var (settings, a, _) = servers.TwoReplicaShard("dircancel", 1, "Quorum");
        settings["Pr2:Projections:RebuildEntriesPerSecond"] = "1000";
        await using var control = NpgsqlDataSource.Create(settings["Pr2:Topology:Shards:0:Replicas:0"]!);
        await using var cluster = await TestClusters.StartAsync(settings);
        var client = new Pr2Client(cluster.Client);
        await FillAsync(client);

        await CatchUpAsync(client, shards: [0, 1]);
        await Sql.ExecuteAsync(control, "delete from pr2_object_directory where actor_id = 'item/7-7'");

        // Canceled while it folds (2,000 entries on each of two replicas at 1,000 a second): the caller is told, the shadow
        // goes, the live directory keeps its damage and goes on with writes.
        var waiting = client.RebuildProjectionAsync(0, ObjectDirectoryProjector.AgentName);
        await Eventually.TrueAsync(async () => (await client.GetProjectionAsync(0, ObjectDirectoryProjector.AgentName)).Replicas.Single(r => r.Replica == 0) is
            { State: "building", Folded: > 0 }, TimeSpan.FromSeconds(20), "the rebuild folds");
        var canceled = await client.CancelProjectionRebuildAsync(0, ObjectDirectoryProjector.AgentName);
        Assert.Equal(("canceled", 1L), (canceled.Replicas.Single().State, canceled.Replicas.Single().Generation));
        var told = await Assert.ThrowsAsync<Pr2Exception>(() => waiting);
        Assert.Equal(ErrorCode.OperationCanceled, told.Code);
        Assert.Equal(0L, await Sql.ScalarAsync(control, "select count(*) from pr2_object_directory_rebuild"));
        Assert.Equal(0L, await Sql.ScalarAsync(control, $"select count(*) from pr2_agent_mark where agent like '{ObjectDirectoryProjector.ShadowName}%'"));
        await Retrying.SendAsync(client, new Message(Guid.NewGuid(), "test", new ActorRef(1, "item/after-cancel"), MessageKind.Insert, "{}"));
        await CatchUpAsync(client, shards: [0, 1]);
        Assert.Equal(0L, await Sql.ScalarAsync(control, "select count(*) from pr2_object_directory where actor_id = 'item/7-7'"));
        Assert.Equal(1L, await Sql.ScalarAsync(control, "select count(*) from pr2_object_directory where actor_id = 'item/after-cancel'"));

        // Started again, it runs to the swap and mends the damage.
        var status = await client.RebuildProjectionAsync(0, ObjectDirectoryProjector.AgentName);
        Assert.Equal(("done", 2L), (status.Replicas.Single().State, status.Replicas.Single().Generation));
        Assert.Equal(1L, await Sql.ScalarAsync(control, "select count(*) from pr2_object_directory where actor_id = 'item/7-7'"));
        Assert.Equal(2001L, await Sql.ScalarAsync(control, "select count(*) from pr2_object_directory where shard = 1"));
    }

    [Fact]
    public async Task A_directory_rebuild_is_canceled_when_shard_0s_primary_moves_and_runs_again_on_the_new_one()
    {
        // Shard 0 on both servers (membership in a database of its own), shard 1 on server A.
        var membership = servers.A.CreateTopology("dirmove_m", 0);
        var onA = servers.A.CreateTopology("dirmove_a", 0, 1);
        var onB = servers.B.CreateTopology("dirmove_b", 0);
        var settings = new Dictionary<string, string?>
        {
            ["Pr2:Silo:Membership"] = membership.Settings["Pr2:Topology:Shards:0:Replicas:0"],
            ["Pr2:Topology:Shards:0:Replicas:0"] = onA.Settings["Pr2:Topology:Shards:0:Replicas:0"],
            ["Pr2:Topology:Shards:0:Replicas:1"] = onB.Settings["Pr2:Topology:Shards:0:Replicas:0"],
            ["Pr2:Topology:Shards:1:Replicas:0"] = onA.Settings["Pr2:Topology:Shards:1:Replicas:0"],
            ["Pr2:Projections:RebuildEntriesPerSecond"] = "400",
        };
        await using var cluster = await TestClusters.StartAsync(settings);
        var client = new Pr2Client(cluster.Client);
        await FillAsync(client);

        var primary = await client.MovePrimaryAsync(0, 0);
        var waiting = client.RebuildProjectionAsync(0, ObjectDirectoryProjector.AgentName);
        await Eventually.TrueAsync(async () => (await client.GetProjectionAsync(0, ObjectDirectoryProjector.AgentName)).Replicas.Single(r => r.Replica == primary) is
            { State: "building", Folded: > 0 }, TimeSpan.FromSeconds(20), "the rebuild folds in shard 0's primary");
        Assert.Equal(1, await client.MovePrimaryAsync(0, 1));

        // The directory is read on replica 1 now: the rebuild in replica 0 is canceled, saying why.
        var told = await Assert.ThrowsAsync<Pr2Exception>(() => waiting);
        Assert.Equal(ErrorCode.OperationCanceled, told.Code);
        Assert.Contains("primary moved", told.Message, StringComparison.Ordinal);

        // Run again, it rebuilds the directory where it is read, and that lists every actor of shard 1.
        var status = await client.RebuildProjectionAsync(0, ObjectDirectoryProjector.AgentName);
        Assert.Equal([(0, "canceled"), (1, "done")], status.Replicas.Select(r => (r.Replica, r.State)).Order());
        await client.CatchUpAsync(ObjectDirectoryProjector.AgentName, 1);
        Assert.Equal(2000L, await Sql.ScalarAsync(onB.Database(0), "select count(*) from pr2_object_directory where shard = 1"));
    }

    // 2,000 actors inserted in shard 1, 100 to an atomic batch.
    private static async Task FillAsync(Pr2Client client)
    {
        for (var batch = 0; batch < 20; batch++)
        {
            List<Message> messages = [.. Enumerable.Range(0, 100).Select(i =>
                new Message(Guid.NewGuid(), "fill", new ActorRef(1, $"item/{batch}-{i}"), MessageKind.Insert, "{}"))];
            await Retrying.CallAsync(() => client.SendBatchAsync(1, messages));
        }
    }

    private static async Task WriteAsync(Pr2Client client, int shard, string actor, MessageKind kind,
        ConcurrentDictionary<(int, string), bool> inserted, ConcurrentDictionary<(int, string), bool> canceled)
    {
        await Retrying.SendAsync(client, new Message(Guid.NewGuid(), "directory-test", new ActorRef(shard, actor), kind, "{}"));
        (kind == MessageKind.Insert ? inserted : canceled)[(shard, actor)] = true;
    }

    // The live directory caught up with every journal of these shards (shard 1 has two replicas, the others one).
    private static async Task CatchUpAsync(Pr2Client client, int[]? shards = null)
    {
        foreach (var shard in shards ?? [0, 1, 2])
        {
            foreach (var replica in shard == 1 ? new[] { 0, 1 } : [0])
            {
                await client.CatchUpAsync(ObjectDirectoryProjector.AgentName, shard, replica);
            }
        }
    }

    // (shard, actor, status) of every actor the journals hold: 2 once any replica holds its cancel.
    private static async Task<HashSet<(int Shard, string Actor, int Status)>> JournalsSayAsync(IEnumerable<(int Shard, NpgsqlDataSource Replica)> journals)
    {
        var actors = new Dictionary<(int, string), int>();
        foreach (var (shard, replica) in journals)
        {
            await using var command = replica.CreateCommand("select actor_id, bool_or(kind = 3) from pr2_journal where kind <> 2 group by actor_id");
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                var key = (shard, reader.GetString(0));
                actors[key] = Math.Max(actors.GetValueOrDefault(key), reader.GetBoolean(1) ? 2 : 1);
            }
        }

        return [.. actors.Select(p => (p.Key.Item1, p.Key.Item2, p.Value))];
    }

    private static async Task<HashSet<(int Shard, string Actor, int Status)>> DirectorySaysAsync(NpgsqlDataSource control)
    {
        var rows = new HashSet<(int, string, int)>();
        await using var command = control.CreateCommand("select shard, actor_id, status from pr2_object_directory");
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            rows.Add((reader.GetInt32(0), reader.GetString(1), reader.GetInt16(2)));
        }

        return rows;
    }
}
