using Npgsql;

namespace PR2.Grains.Agents;

/// <summary>
/// A named follower of shard journals. The runner reads entries after the agent's mark and calls
/// <see cref="ApplyAsync"/> inside a transaction on the agent's home database; the mark advances in that
/// same transaction, so effects happen exactly once. Effects must go through the given connection.
/// </summary>
public interface IJournalAgent
{
    /// <summary>Stable name: the key of its marks. Lowercase, no '/'.</summary>
    string Name { get; }

    /// <summary>Whether the agent follows <paramref name="shard"/>'s journal.</summary>
    bool Follows(int shard);

    /// <summary>
    /// True: one instance per replica of each followed shard, reading that replica's journal. Positions are local to a
    /// replica, so its marks never mean anything on another: a change of primary cannot make it skip or repeat an entry.
    /// False: one instance per followed shard, reading the primary (only for agents whose effects do not depend on it).
    /// </summary>
    bool PerReplica { get; }

    /// <summary>
    /// Where the agent's effects and marks live while it follows <paramref name="sourceShard"/>. For a per-replica agent,
    /// <paramref name="sourceShard"/> itself means the replica it reads (each replica keeps its own copy of the effects);
    /// another shard means that shard's primary, with one mark per replica followed.
    /// </summary>
    int HomeShard(int sourceShard);

    /// <summary>The key of the agent's marks (and parked entries); a rule added again under an old name gets a new one.</summary>
    string MarkName => Name;

    /// <summary>False for agents that look only at an entry's position, actor and kind: their entries are read with empty bodies.</summary>
    bool ReadsBodies => true;

    /// <summary>
    /// False for agents that act on inserts and cancels only: the runner reads just those, up to the journal's head,
    /// and moves the mark over the modifies in between without reading them.
    /// </summary>
    bool ReadsModifies => true;

    /// <summary>
    /// False for agents that never look at an entry's <see cref="JournalEntry.RecordedAt"/>: they may be given the entries
    /// a writer on their silo just committed from memory (<see cref="Writing.RecentEntries"/>), where that time is the silo's
    /// clock rather than the database's.
    /// </summary>
    bool ReadsRecordedAt => true;

    /// <summary>A paused agent does not move (rules can be paused); it goes on from its mark when resumed.</summary>
    bool Paused => false;

    /// <summary>
    /// Where the agent's mark starts on <paramref name="shard"/> the first time it runs on a replica (0: the whole journal);
    /// asked on that replica's connection, inside the batch's transaction.
    /// </summary>
    Task<long> StartPositionAsync(int shard, NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken) =>
        Task.FromResult(0L);

    /// <summary>Work of the agent's own inside each batch's transaction, before the entries (e.g. retrying parked entries); returns how much it did.</summary>
    Task<int> BeforeBatchAsync(AgentBatch batch, NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken) =>
        Task.FromResult(0);

    /// <summary>The last position the agent may apply now (e.g. no further than another agent's mark); the default: no limit.</summary>
    Task<long> ReadyUpToAsync(int sourceShard, NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken) =>
        Task.FromResult(long.MaxValue);

    /// <summary>Applies a contiguous batch of entries (position order) from the batch's source shard.</summary>
    Task ApplyAsync(AgentBatch batch, IReadOnlyList<JournalEntry> entries, NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken);

    /// <summary>
    /// The batch's transaction committed, leaving the mark at <paramref name="mark"/>. Not called when it rolled back, so
    /// an agent that keeps in memory what it wrote learns here that the database now holds it.
    /// </summary>
    void Committed(AgentBatch batch, long mark)
    {
    }
}
