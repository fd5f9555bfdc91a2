using System.Diagnostics;
using Npgsql;
using Orleans.Runtime;
using PR2.Client;
using PR2.Tests.Infrastructure;
using Xunit.Abstractions;

namespace PR2.Tests;

/// <summary>
/// Membership in a database of its own (<c>Pr2:Silo:Membership</c>) on a highly available server apart from the shards,
/// as production runs it: a primary and a streaming standby behind one multi-host connection string. The primary is
/// killed for good; while nothing takes writes the running silos keep acknowledging every write, and once the standby
/// is promoted (what an HA manager does) a new silo joins through the same connection string.
/// </summary>
public sealed class MembershipOutageTests(TwoPostgresServers servers, ITestOutputHelper output) : IClassFixture<TwoPostgresServers>
{
    [Fact]
    public async Task Running_silos_keep_serving_when_the_membership_primary_is_lost_and_a_new_silo_joins_through_the_promoted_standby()
    {
        var data = servers.A.CreateTopology("members", 0, 1);
        var membershipDatabase = $"membership_{Guid.NewGuid():N}"[..30];
        var primary = servers.B.Server;
        await using (var create = new NpgsqlConnection(primary.ConnectionString("postgres")))
        {
            await create.OpenAsync();
            await new NpgsqlCommand($"create database {membershipDatabase}", create).ExecuteNonQueryAsync();
        }

        var standbyDirectory = Path.Combine(Path.GetTempPath(), "pr2-tests", $"standby-{Guid.NewGuid():N}"[..20]);
        try
        {
            await RunAsync(data, membershipDatabase, standbyDirectory);
        }
        finally
        {
            TryDelete(standbyDirectory);
        }
    }

    // The cluster is disposed before the standby (declared after it): its silos record their shutdown in membership.
    private async Task RunAsync(TestTopology data, string membershipDatabase, string standbyDirectory)
    {
        var primary = servers.B.Server;
        await using var standby = await primary.StartStandbyAsync(standbyDirectory);
        var membershipConnection = new NpgsqlConnectionStringBuilder
        {
            Host = $"127.0.0.1:{primary.Port},127.0.0.1:{standby.Port}",
            Username = "postgres",
            Database = membershipDatabase,
            TargetSessionAttributes = "primary",
            Timeout = 3,
        }.ConnectionString;
        var settings = new Dictionary<string, string?>(data.Settings) { ["Pr2:Silo:Membership"] = membershipConnection };
        await using var cluster = await TestClusters.StartWithAdoNetClusteringAsync(settings, silos: 2);
        var client = new Pr2Client(cluster.Client);
        await using var onStandby = NpgsqlDataSource.Create(standby.ConnectionString(membershipDatabase));
        await Eventually.TrueAsync(async () => await ActiveSilosAsync(onStandby) == 2, TimeSpan.FromSeconds(30), "two active silos replicated to the standby");
        Assert.Equal(0, await data.ScalarAsync(0, "select count(*) from pr2_membership"));

        var before = await WriteForAsync(client, TimeSpan.FromSeconds(5));
        await primary.StopAsync("immediate");
        var during = await WriteForAsync(client, TimeSpan.FromSeconds(15));
        await standby.PromoteAsync();
        output.WriteLine($"acks in 5 s before the outage: {before.Acks}; in 15 s of outage: {during.Acks} ({during.Errors} errors, slowest {during.Slowest.TotalMilliseconds:0} ms)");
        Assert.Equal(0, before.Errors);
        Assert.Equal(0, during.Errors);
        Assert.True(during.Acks > 0, "no write was acknowledged while the membership primary was down");

        // The old primary stays down (an HA manager would fence it); the new silo finds the promoted standby.
        await cluster.StartAdditionalSiloAsync();
        await Eventually.TrueAsync(async () => await ActiveSilosAsync(onStandby) == 3, TimeSpan.FromSeconds(60), "three active silos in membership");
        var after = await WriteForAsync(client, TimeSpan.FromSeconds(3));
        Assert.Equal(0, after.Errors);
    }

    private static void TryDelete(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A leftover temp directory is harmless.
        }
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
