using System.Diagnostics;
using Npgsql;
using Orleans.Runtime;
using PR2.Client;
using PR2.Tests.Infrastructure;
using Xunit.Abstractions;

namespace PR2.Tests;

/// <summary>
/// Membership in a database of its own (<c>Pr2:Silo:Membership</c>) on a server apart from the shards: while that
/// server is down, the running silos keep acknowledging every write; once it is back, a new silo joins.
/// </summary>
public sealed class MembershipOutageTests(TwoPostgresServers servers, ITestOutputHelper output) : IClassFixture<TwoPostgresServers>
{
    [Fact]
    public async Task Running_silos_keep_serving_while_the_membership_server_is_down_and_a_new_silo_joins_once_it_is_back()
    {
        var data = servers.A.CreateTopology("members", 0, 1);
        var membershipDatabase = $"membership_{Guid.NewGuid():N}"[..30];
        var settings = new Dictionary<string, string?>(data.Settings)
        {
            ["Pr2:Silo:Membership"] = servers.B.Server.ConnectionString(membershipDatabase),
        };
        await using var cluster = await TestClusters.StartWithAdoNetClusteringAsync(settings, silos: 2);
        var client = new Pr2Client(cluster.Client);
        await using var membership = NpgsqlDataSource.Create(servers.B.Server.ConnectionString(membershipDatabase));
        Assert.Equal(2, await ActiveSilosAsync(membership));
        Assert.Equal(0, await data.ScalarAsync(0, "select count(*) from pr2_membership"));

        var before = await WriteForAsync(client, TimeSpan.FromSeconds(5));
        NpgsqlConnection.ClearAllPools();
        await servers.B.Server.StopAsync("immediate");
        var during = await WriteForAsync(client, TimeSpan.FromSeconds(15));
        await servers.B.Server.StartAgainAsync();
        membership.Clear();
        output.WriteLine($"acks in 5 s before the outage: {before.Acks}; in 15 s of outage: {during.Acks} ({during.Errors} errors, slowest {during.Slowest.TotalMilliseconds:0} ms)");
        Assert.Equal(0, before.Errors);
        Assert.Equal(0, during.Errors);
        Assert.True(during.Acks > 0, "no write was acknowledged while the membership server was down");

        await cluster.StartAdditionalSiloAsync();
        await Eventually.TrueAsync(async () => await ActiveSilosAsync(membership) == 3, TimeSpan.FromSeconds(60), "three active silos in membership");
        var after = await WriteForAsync(client, TimeSpan.FromSeconds(3));
        Assert.Equal(0, after.Errors);
    }

    private static async Task<long> ActiveSilosAsync(NpgsqlDataSource membership)
    {
        await using var command = membership.CreateCommand("select count(*) from pr2_membership where status = $1");
        command.Parameters.Add(new NpgsqlParameter { Value = (int)SiloStatus.Active });
        return (long)(await command.ExecuteScalarAsync())!;
    }

    // Four writers inserting fresh actors in shard 1 for the given time; any refusal or exception counts as an error.
    private static async Task<(int Acks, int Errors, TimeSpan Slowest)> WriteForAsync(Pr2Client client, TimeSpan length)
    {
        var until = DateTime.UtcNow + length;
        var results = await Task.WhenAll(Enumerable.Range(0, 4).Select(async _ =>
        {
            var (acks, errors, slowest) = (0, 0, TimeSpan.Zero);
            while (DateTime.UtcNow < until)
            {
                var started = Stopwatch.StartNew();
                try
                {
                    await client.SendAsync(1, $"member/{Guid.NewGuid():N}", MessageKind.Insert, "{}");
                    acks++;
                }
                catch (Exception)
                {
                    errors++;
                }

                slowest = started.Elapsed > slowest ? started.Elapsed : slowest;
            }

            return (acks, errors, slowest);
        }));
        return (results.Sum(r => r.acks), results.Sum(r => r.errors), results.Max(r => r.slowest));
    }
}
