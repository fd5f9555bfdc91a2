using Microsoft.Extensions.Configuration;
using PR2.Grains.Configuration;

namespace PR2.Silo.Embedded;

/// <summary>
/// The zero-configuration start: when no topology is configured, run a local PostgreSQL server from the
/// installed binaries and point the control shard and two business shards at databases on it.
/// </summary>
public static class EmbeddedDefault
{
    public const string DataDirectoryKey = "Pr2:Embedded:DataDirectory";
    public const string PostgresBinKey = "Pr2:Embedded:PostgresBin";

    /// <summary>Shards the embedded default creates: the control shard and two business shards.</summary>
    public static IReadOnlyList<int> Shards { get; } = [0, 1, 2];

    public static bool IsNeeded(IConfiguration configuration) =>
        !configuration.GetSection($"{TopologyOptions.SectionName}:{nameof(TopologyOptions.Shards)}").GetChildren().Any();

    /// <summary>Starts the local server and adds its topology to <paramref name="configuration"/>.</summary>
    public static async Task<PostgresServer> StartAsync(IConfigurationManager configuration, CancellationToken cancellationToken = default)
    {
        var dataDirectory = configuration[DataDirectoryKey] ?? DefaultDataDirectory();
        var server = await PostgresServer.StartAsync(dataDirectory, PostgresBinaries.Locate(configuration[PostgresBinKey]), stopOnDispose: true, cancellationToken: cancellationToken);
        configuration.AddInMemoryCollection(Shards.Select(shard => KeyValuePair.Create<string, string?>(
            $"{TopologyOptions.SectionName}:{nameof(TopologyOptions.Shards)}:{shard}:{nameof(ShardTopology.Replicas)}:0",
            server.ConnectionString($"pr2_shard{shard}"))));
        return server;
    }

    // root cannot hand its home directory to the postgres user, so root's embedded data lives in /var/lib.
    private static string DefaultDataDirectory() =>
        Environment.UserName == "root"
            ? "/var/lib/pr2/postgres"
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create), "pr2", "postgres");
}
