using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using PR2.Grains.Configuration;
using PR2.Grains.Storage;

namespace PR2.Tests.Infrastructure;

/// <summary>Builds a <see cref="ShardRegistry"/> from test settings and migrates its databases, without a silo.</summary>
public static class Migrations
{
    public static ShardRegistry Registry(IReadOnlyDictionary<string, string?> settings) =>
        new(Options.Create(new TopologyOptions
        {
            // Keys are Pr2:Topology:Shards:{shard}:Replicas:{index}.
            Shards = settings
                .Where(kv => kv.Key.StartsWith("Pr2:Topology:Shards:", StringComparison.Ordinal))
                .GroupBy(kv => kv.Key.Split(':')[3])
                .ToDictionary(g => g.Key, g => new ShardTopology
                {
                    Replicas = [.. g.OrderBy(kv => int.Parse(kv.Key.Split(':')[5], System.Globalization.CultureInfo.InvariantCulture)).Select(kv => kv.Value!)],
                }),
        }), Options.Create(new WriteOptions()));

    public static async Task MigrateAsync(IReadOnlyDictionary<string, string?> settings)
    {
        await using var registry = Registry(settings);
        await new SchemaMigrator(registry, NullLogger<SchemaMigrator>.Instance).MigrateAllAsync(CancellationToken.None);
    }
}
