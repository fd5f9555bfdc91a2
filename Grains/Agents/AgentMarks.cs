using Npgsql;
using PR2.Grains.Storage;

namespace PR2.Grains.Agents;

/// <summary>Reads agent high-water marks, and says how one is moved.</summary>
public static class AgentMarks
{
    /// <summary>
    /// Moves the mark of (agent $2, shard $3) to $1 only from $4, the value read under its lock: a compare-and-set, so
    /// a mark never moves twice from the same place. Every transaction that changes the agent's effects counts one
    /// revision (sql/012).
    /// </summary>
    public const string Advance =
        "update pr2_agent_mark set position = $1, revision = revision + 1, updated_at = now() where agent = $2 and shard = $3 and position = $4";

    /// <summary>Counts one revision of (agent $1, shard $2) for a transaction that changed effects but applied no entries.</summary>
    public const string Revise =
        "update pr2_agent_mark set revision = revision + 1, updated_at = now() where agent = $1 and shard = $2";

    /// <summary>
    /// The key of the mark of <paramref name="agent"/> following <paramref name="shard"/> on <paramref name="replica"/>: its
    /// <see cref="IJournalAgent.MarkName"/>, with the replica added when the marks of several replicas share one home.
    /// </summary>
    public static string Name(IJournalAgent agent, int shard, int replica) =>
        agent.PerReplica && agent.HomeShard(shard) != shard ? $"{agent.MarkName}@{replica}" : agent.MarkName;

    /// <summary>The database holding the effects and mark of <paramref name="agent"/> following <paramref name="shard"/> on <paramref name="replica"/>.</summary>
    public static NpgsqlDataSource Home(IJournalAgent agent, ShardRegistry shards, int shard, int replica) =>
        agent.PerReplica && agent.HomeShard(shard) == shard ? shards.Get(shard).Replicas[replica] : shards.Get(agent.HomeShard(shard)).Primary;

    /// <summary>The mark of (agent, shard) in its home database; 0 before the agent first ran.</summary>
    public static async Task<long> ReadAsync(NpgsqlDataSource home, string agent, int shard, CancellationToken cancellationToken = default)
    {
        await using var command = home.CreateCommand("select position from pr2_agent_mark where agent = $1 and shard = $2");
        command.Parameters.Add(new() { Value = agent });
        command.Parameters.Add(new() { Value = shard });
        return await command.ExecuteScalarAsync(cancellationToken) is long position ? position : 0;
    }

    /// <summary>The same, read on an open connection (inside its transaction).</summary>
    public static async Task<long> ReadAsync(NpgsqlConnection connection, string agent, int shard, CancellationToken cancellationToken = default)
    {
        await using var command = new NpgsqlCommand("select position from pr2_agent_mark where agent = $1 and shard = $2", connection);
        command.Parameters.Add(new() { Value = agent });
        command.Parameters.Add(new() { Value = shard });
        return await command.ExecuteScalarAsync(cancellationToken) is long position ? position : 0;
    }
}
