using Npgsql;

namespace PR2.Tests.Infrastructure;

/// <summary>
/// Two throwaway PostgreSQL servers for one test class (a class fixture), so that replicas live on
/// different servers and a test can kill, pause or restart one. At the end both are thawed and stopped,
/// whatever state a test's nemesis left them in.
/// </summary>
public sealed class TwoPostgresServers : IAsyncLifetime
{
    public PostgresFixture A { get; } = new();

    public PostgresFixture B { get; } = new();

    /// <summary>Shard 0 and <paramref name="shard"/>'s replica 0 (its first primary) on server A, its replica 1 on server B.</summary>
    public (Dictionary<string, string?> Settings, NpgsqlDataSource A, NpgsqlDataSource B) TwoReplicaShard(string name, int shard, string ackPolicy)
    {
        var control = A.CreateTopology(name, 0);
        var onA = A.CreateTopology($"{name}_a", shard);
        var onB = B.CreateTopology($"{name}_b", shard);
        var settings = new Dictionary<string, string?>(control.Settings)
        {
            [$"Pr2:Topology:Shards:{shard}:Replicas:0"] = onA.Settings[$"Pr2:Topology:Shards:{shard}:Replicas:0"],
            [$"Pr2:Topology:Shards:{shard}:Replicas:1"] = onB.Settings[$"Pr2:Topology:Shards:{shard}:Replicas:0"],
            [$"Pr2:Topology:Shards:{shard}:AckPolicy"] = ackPolicy,
        };
        return (settings, onA.Database(shard), onB.Database(shard));
    }

    public async Task InitializeAsync() => await Task.WhenAll(A.InitializeAsync(), B.InitializeAsync());

    public async Task DisposeAsync()
    {
        foreach (var server in new[] { A, B })
        {
            try
            {
                await server.Server.ResumeAsync();
            }
            catch (Exception e) when (e is InvalidOperationException or IOException)
            {
                // Not running (stopped by a test): nothing to thaw.
            }
        }

        await Task.WhenAll(A.DisposeAsync(), B.DisposeAsync());
    }
}
