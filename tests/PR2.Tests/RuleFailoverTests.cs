using Npgsql;
using PR2.Client;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// A rule's effects happen once per source entry across fail-overs: shards 0 and 1 have a replica on each of two real
/// servers; entries are written while one server is paused, the other is killed (the writer fails over to the one that
/// was behind), more entries follow, and the killed server comes back. Every source entry must be audited exactly once
/// in shard 0 on every replica, with the same messages on both, and every replica's view must count every entry once.
/// </summary>
public sealed class RuleFailoverTests(TwoPostgresServers servers) : IClassFixture<TwoPostgresServers>
{
    private const string AuditRule = """
        {
          "name": "audit-accounts",
          "on": {"type": "acct", "kinds": ["insert"], "shards": [1]},
          "do": [
            {"send": {"shard": 0, "actor": "audit/acct-{entry.shard}-{entry.key}", "kind": "insert", "body": {"acct": "{entry.actor}"}}},
            {"view": {"name": "acct_count", "key": "all", "add": {"n": 1}}}
          ],
          "start": "beginning"
        }
        """;

    [Fact]
    public async Task Every_source_entry_is_acted_on_exactly_once_when_the_primary_dies_and_a_lagging_replica_takes_over()
    {
        var (settings, control, accounts) = Topology("rule_failover");
        await using var cluster = await TestClusters.StartAsync(settings);
        var client = new Pr2Client(cluster.Client);
        await client.PutRuleAsync(AuditRule);

        var acks = new List<WriteAck>();
        for (var i = 0; i < 10; i++)
        {
            acks.Add(await client.SendAsync(1, $"acct/{i}", MessageKind.Insert, """{"open": true}"""));
        }

        await Eventually.TrueAsync(async () => await AuditsAsync(control[1]) == 10 && await AccountsAsync(accounts[1]) == 10,
            TimeSpan.FromSeconds(60), "server B holds the first 10 accounts and their audits");

        // Server B stops: 30 accounts are written (and audited) on server A alone.
        await servers.B.Server.PauseAsync();
        try
        {
            for (var i = 10; i < 40; i++)
            {
                acks.Add(await client.SendAsync(1, $"acct/{i}", MessageKind.Insert, """{"open": true}"""));
            }

            await Eventually.TrueAsync(async () => await AuditsAsync(control[0]) == 40, TimeSpan.FromSeconds(60), "server A audited 40 accounts");

            // Server A dies; B comes back, behind by 30 accounts: both shards fail over to it.
            NpgsqlConnection.ClearAllPools();
            await servers.A.Server.StopAsync("immediate");
        }
        finally
        {
            await servers.B.Server.ResumeAsync();
        }

        try
        {
            for (var i = 40; i < 70; i++)
            {
                acks.Add(await Retrying.SendAsync(client, new Message(Guid.NewGuid(), "test", new ActorRef(1, $"acct/{i}"), MessageKind.Insert, """{"open": true}""")));
            }
        }
        finally
        {
            await servers.A.Server.StartAgainAsync();
        }

        Assert.All(acks, ack => Assert.False(ack.Duplicate));
        await Eventually.TrueAsync(async () =>
                await AuditsAsync(control[0]) == 70 && await AuditsAsync(control[1]) == 70
                && await ViewCountAsync(accounts[0]) == 70 && await ViewCountAsync(accounts[1]) == 70,
            TimeSpan.FromSeconds(90), "both replicas of shard 0 hold 70 audits, and both views of shard 1 count 70 accounts");

        foreach (var database in control)
        {
            // Exactly once: one audit entry per account, none for anything else, every one for the right account.
            var audits = await RowsAsync(database, "select actor_id || '=' || (body->>'acct') from pr2_journal where actor_id like 'audit/%' order by 1");
            Assert.Equal(Enumerable.Range(0, 70).Select(i => $"audit/acct-1-{i}=acct/{i}").Order(StringComparer.Ordinal), audits);
            Assert.Empty(await RowsAsync(database, "select actor_id from pr2_journal where actor_id like 'audit/%' group by actor_id having count(*) > 1"));
        }

        Assert.Equal(await ReplicaContents.MessageIdsAsync(control[0]), await ReplicaContents.MessageIdsAsync(control[1]));
        foreach (var database in accounts)
        {
            // The receiver took every message: none refused (a refusal would mean one effect under two ids).
            Assert.Empty(await RowsAsync(database, "select message_id::text || ': ' || failure from pr2_outbox where failure is not null"));
        }
    }

    private (Dictionary<string, string?> Settings, NpgsqlDataSource[] Control, NpgsqlDataSource[] Accounts) Topology(string prefix)
    {
        var settings = new Dictionary<string, string?>();
        var databases = new Dictionary<int, NpgsqlDataSource[]> { [0] = new NpgsqlDataSource[2], [1] = new NpgsqlDataSource[2] };
        for (var i = 0; i < 2; i++)
        {
            var topology = (i == 0 ? servers.A : servers.B).CreateTopology($"{prefix}_{i}", 0, 1);
            foreach (var shard in new[] { 0, 1 })
            {
                settings[$"Pr2:Topology:Shards:{shard}:Replicas:{i}"] = topology.Settings[$"Pr2:Topology:Shards:{shard}:Replicas:0"];
                databases[shard][i] = topology.Database(shard);
            }
        }

        return (settings, databases[0], databases[1]);
    }

    private static async Task<long> AuditsAsync(NpgsqlDataSource database) =>
        await ScalarAsync(database, "select count(*) from pr2_journal where actor_id like 'audit/%'");

    private static async Task<long> AccountsAsync(NpgsqlDataSource database) =>
        await ScalarAsync(database, "select count(*) from pr2_journal where actor_id like 'acct/%'");

    private static async Task<long> ViewCountAsync(NpgsqlDataSource database) =>
        await ScalarAsync(database, "select coalesce((select (doc->>'n')::numeric::bigint from pr2_view where view = 'acct_count' and key = 'all'), 0)");

    // -1 while the server cannot be reached, so a condition waiting on it stays false.
    private static async Task<long> ScalarAsync(NpgsqlDataSource database, string sql)
    {
        try
        {
            await using var command = database.CreateCommand(sql);
            return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (NpgsqlException)
        {
            return -1;
        }
    }

    private static async Task<List<string>> RowsAsync(NpgsqlDataSource database, string sql)
    {
        await using var command = database.CreateCommand(sql);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<string>();
        while (await reader.ReadAsync())
        {
            rows.Add(reader.GetString(0));
        }

        return rows;
    }
}
