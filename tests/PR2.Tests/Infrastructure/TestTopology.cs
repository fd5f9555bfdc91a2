using Npgsql;
using PR2.Silo.Embedded;

namespace PR2.Tests.Infrastructure;

/// <summary>
/// Fresh databases (one per shard) on a test server, as configuration settings for silos, plus direct
/// data sources so tests can check what PostgreSQL really holds.
/// </summary>
public sealed class TestTopology
{
    private readonly Dictionary<int, NpgsqlDataSource> _sources = [];

    public TestTopology(PostgresServer server, string prefix, int[] shards)
    {
        var unique = $"{prefix}_{Guid.NewGuid():N}"[..Math.Min(prefix.Length + 9, 50)].ToLowerInvariant();
        foreach (var shard in shards)
        {
            // Idle connections close after 15 s: the test classes share one server (400 connections), and pools that
            // keep their idle connections for Npgsql's default 5 minutes added up past it ("too many clients").
            var connectionString = new NpgsqlConnectionStringBuilder(server.ConnectionString($"{unique}_s{shard}"))
            {
                ConnectionIdleLifetime = 15,
                ConnectionPruningInterval = 5,
            }.ConnectionString;
            Settings[$"Pr2:Topology:Shards:{shard}:Replicas:0"] = connectionString;
            _sources[shard] = NpgsqlDataSource.Create(connectionString);
        }
    }

    /// <summary>Configuration keys and values a silo is started with.</summary>
    public Dictionary<string, string?> Settings { get; } = [];

    public IReadOnlyCollection<int> Shards => _sources.Keys;

    /// <summary>A data source on the shard's (only) replica database.</summary>
    public NpgsqlDataSource Database(int shard) => _sources[shard];

    public async Task<long> ScalarAsync(int shard, string sql, params object[] parameters)
    {
        await using var command = Database(shard).CreateCommand(sql);
        foreach (var parameter in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = parameter });
        }

        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    public Task<long> JournalCountAsync(int shard) => ScalarAsync(shard, "select count(*) from pr2_journal");
}
