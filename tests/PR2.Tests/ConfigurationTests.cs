using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using PR2.Grains.Configuration;
using PR2.Grains.Storage;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>A topology the silo cannot run is refused at start, with errors that name the configuration key.</summary>
[Collection(PostgresCollection.Name)]
public sealed class ConfigurationTests(PostgresFixture postgres)
{
    [Fact]
    public void Topology_errors_name_the_bad_key()
    {
        var options = new TopologyOptions
        {
            Shards =
            {
                ["1"] = new ShardTopology { Replicas = ["Host=127.0.0.1;Database=pr2_s1", "Database=only"] },
                ["x"] = new ShardTopology { Replicas = ["Host=h;Database=d"] },
                ["2"] = new ShardTopology(),
                ["3"] = new ShardTopology { Replicas = ["Host=h;Password=secret;NoSuchKeyword=1"] },
            },
        };

        var result = new TopologyOptionsValidator().Validate(null, options);

        Assert.True(result.Failed);
        var failures = result.Failures!.ToList();
        Assert.Contains(failures, f => f.StartsWith("Pr2:Topology:Shards:1:Replicas:1: connection string has no Host", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Pr2:Topology:Shards:x: a shard code must be an integer", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Pr2:Topology:Shards:2:Replicas: shard 2 has no replicas", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Pr2:Topology:Shards:3:Replicas:0: connection string is not valid", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Pr2:Topology:Shards:0: the control shard 0 is missing", StringComparison.Ordinal));
        Assert.DoesNotContain(failures, f => f.Contains("secret", StringComparison.Ordinal));
    }

    [Fact]
    public void Write_limits_that_cannot_work_are_refused()
    {
        var result = new WriteOptionsValidator().Validate(null, new WriteOptions { MaxBodyBytes = 0, MaxBatchSize = 0, CommandTimeoutSeconds = 0, ActorIdleMinutes = 0.5 });
        Assert.Equal(4, result.Failures!.Count());
        Assert.All(result.Failures!, f => Assert.StartsWith("Pr2:Write:", f, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_database_that_belongs_to_one_shard_is_refused_as_a_replica_of_another()
    {
        var topology = postgres.CreateTopology("owner", 0, 1);
        await MigrateAsync(topology.Settings);

        // Point shard 2 at shard 1's database.
        var wrong = new Dictionary<string, string?>(topology.Settings)
        {
            ["Pr2:Topology:Shards:2:Replicas:0"] = topology.Settings["Pr2:Topology:Shards:1:Replicas:0"],
        };
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => MigrateAsync(wrong));
        Assert.StartsWith("Pr2:Topology:Shards:2:Replicas:0: database", error.Message, StringComparison.Ordinal);
        Assert.Contains("is a replica of shard 1, not of shard 2", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Migrations_are_applied_once_even_when_silos_start_together()
    {
        var topology = postgres.CreateTopology("migrate", 0, 1);
        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => MigrateAsync(topology.Settings)));

        var scripts = SchemaScript.LoadEmbedded();
        Assert.Equal(scripts.Count, await topology.ScalarAsync(0, "select count(*) from pr2_schema_version"));
        Assert.Equal(scripts.Count(s => !s.ControlShardOnly), await topology.ScalarAsync(1, "select count(*) from pr2_schema_version"));
        Assert.Equal(0, await topology.ScalarAsync(1, "select count(*) from information_schema.tables where table_name = 'orleansquery'"));
        Assert.Equal(1, await topology.ScalarAsync(0, "select count(*) from information_schema.tables where table_name = 'orleansquery'"));
    }

    private static Task MigrateAsync(IReadOnlyDictionary<string, string?> settings) => Migrations.MigrateAsync(settings);
}
