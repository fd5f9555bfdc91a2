using Npgsql;
using Orleans.Concurrency;
using PR2.Grains.Agents;
using PR2.Grains.Storage;

namespace PR2.Grains;

/// <summary>Answers status queries from the databases themselves, so what it reports is what is committed.</summary>
[StatelessWorker]
public sealed class StatusGrain(ShardRegistry shards, AgentCatalog agents) : Grain, IStatusGrain
{
    public async Task<ClusterStatus> GetStatus()
    {
        var statuses = await Task.WhenAll(shards.ShardCodes.Select(ReadShardAsync));
        return new ClusterStatus(statuses, DateTimeOffset.UtcNow);
    }

    private async Task<ShardStatus> ReadShardAsync(int shard)
    {
        var set = shards.Get(shard);
        var replicas = await Task.WhenAll(set.Replicas.Select((source, index) => ReadReplicaAsync(shard, index, source)));
        var head = replicas[0].Head;
        var clock = replicas[0].Reachable ? (await JournalStore.ReadHeadAsync(set.Primary, shard)).Clock : -1;
        var progress = new List<AgentProgress>();
        foreach (var agent in agents.Agents.Where(a => a.Follows(shard)).OrderBy(a => a.Name, StringComparer.Ordinal))
        {
            try
            {
                var mark = await AgentMarks.ReadAsync(shards.Get(agent.HomeShard(shard)).Primary, agent.Name, shard);
                progress.Add(new AgentProgress(agent.Name, mark, head < 0 ? -1 : Math.Max(0, head - mark)));
            }
            catch (NpgsqlException)
            {
                progress.Add(new AgentProgress(agent.Name, -1, -1));
            }
        }

        return new ShardStatus(shard, head, clock, replicas, progress);
    }

    private static async Task<ReplicaStatus> ReadReplicaAsync(int shard, int index, NpgsqlDataSource source)
    {
        var builder = new NpgsqlConnectionStringBuilder(source.ConnectionString);
        var endpoint = $"{builder.Host}:{builder.Port}/{builder.Database}";
        try
        {
            var head = await JournalStore.ReadHeadAsync(source, shard);
            return new ReplicaStatus(index, endpoint, index == 0, true, head.Position, null);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            return new ReplicaStatus(index, endpoint, index == 0, false, -1, e.Message);
        }
    }
}
