using Orleans.TestingHost;
using PR2.Client;

namespace PR2.Tests.Infrastructure;

/// <summary>
/// One PostgreSQL server and one single-silo cluster over shards 0-3, shared by the tests of the
/// <see cref="SharedClusterCollection"/>. Tests keep to themselves by using fresh actor ids.
/// </summary>
public sealed class SharedClusterFixture : IAsyncLifetime
{
    private readonly PostgresFixture _postgres = new();

    public InProcessTestCluster Cluster { get; private set; } = null!;

    public TestTopology Topology { get; private set; } = null!;

    public Pr2Client Client { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        await _postgres.InitializeAsync();
        try
        {
            Topology = _postgres.CreateTopology("shared", 0, 1, 2, 3);
            Topology.Settings["Pr2:Write:MaxBodyBytes"] = "4096";
            // Off by default; the shared cluster's tests run the write path with it on (the other clusters, off).
            Topology.Settings["Pr2:Write:OverlapCommits"] = "true";
            Cluster = await TestClusters.StartAsync(Topology.Settings);
            Client = new Pr2Client(Cluster.Client);
        }
        catch
        {
            // xUnit does not dispose a fixture whose initialization failed: stop the server here.
            await _postgres.DisposeAsync();
            throw;
        }
    }

    public async Task DisposeAsync()
    {
        if (Cluster is not null)
        {
            await Cluster.DisposeAsync();
        }

        await _postgres.DisposeAsync();
    }

    /// <summary>A new actor id nobody used before: <c>type/random</c>.</summary>
    public static string NewActorId(string type = "order") => $"{type}/{Guid.NewGuid():N}";
}
