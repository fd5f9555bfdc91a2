using Npgsql;
using PR2.Silo.Embedded;

namespace PR2.Tests.Infrastructure;

/// <summary>
/// A throwaway PostgreSQL server for one test collection, in its own temporary data directory on a free
/// loopback port; stopped and deleted at the end. A test that cannot start it fails: nothing is skipped.
/// Each test class asks for databases with its own prefix, so classes never see each other's data.
/// </summary>
public sealed class PostgresFixture : IAsyncLifetime
{
    private readonly string _dataDirectory = Path.Combine(Path.GetTempPath(), "pr2-tests", Guid.NewGuid().ToString("N")[..12]);

    public PostgresServer Server { get; private set; } = null!;

    public async Task InitializeAsync() =>
        Server = await PostgresServer.StartAsync(_dataDirectory, PostgresBinaries.Locate(Environment.GetEnvironmentVariable("PR2_PG_BIN")));

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        NpgsqlConnection.ClearAllPools();
        try
        {
            Directory.Delete(_dataDirectory, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp directory is harmless.
        }
    }

    /// <summary>
    /// Loses the server with all its data, as a machine whose disk died would (stopped at once, its data directory
    /// deleted), and starts an empty one in its place on the same port: what an operator has after replacing it.
    /// </summary>
    public async Task ReplaceServerAsync()
    {
        var port = Server.Port;
        await Server.StopAsync("immediate");
        Directory.Delete(_dataDirectory, recursive: true);
        Server = await PostgresServer.StartAsync(_dataDirectory, PostgresBinaries.Locate(Environment.GetEnvironmentVariable("PR2_PG_BIN")), port: port);
    }

    /// <summary>A topology with one replica database per shard, named after <paramref name="prefix"/>.</summary>
    public TestTopology CreateTopology(string prefix, params int[] shards) => new(Server, prefix, shards);
}
