namespace PR2;

/// <summary>
/// The cluster directory, kept in the control shard (key 0). Its shard map and agent registrations are
/// records of actors in shard 0 (<c>shard/{code}</c>, <c>agent/{name}</c>), so every change to them is a
/// journaled message with an audit trail; the object directory is kept by the object-directory agent.
/// </summary>
public interface IDirectoryGrain : IGrainWithIntegerKey
{
    /// <summary>Records the configured topology and agents in shard 0 where they differ from what is recorded. Idempotent.</summary>
    Task Sync();

    /// <summary>
    /// Records the state of each replica of <paramref name="shard"/> (<c>up</c>, <c>down</c>, <c>catching-up</c>) if it changed.
    /// False when it could not yet (the shard is not in the directory, or its record changed meanwhile).
    /// </summary>
    Task<bool> RecordReplicaStates(int shard, IReadOnlyList<string> states);

    /// <summary>The shard map as recorded in shard 0.</summary>
    Task<IReadOnlyList<ShardEntry>> GetShards();

    /// <summary>
    /// Adds a shard to the running cluster: creates its databases if they do not exist, applies the schema, and records it
    /// in the directory, which every silo follows (agents and rules start on it there). Safe to retry: the same shard again
    /// returns its entry. Every silo must have the configuration keys it names.
    /// </summary>
    Task<ShardEntry> AddShard(NewShard shard);

    /// <summary>
    /// Adds a replica to a running shard (not shard 0): its database, named by the configuration key
    /// <paramref name="connection"/> (under <c>Pr2:Connections:</c>, set on every silo), is created if missing and given the
    /// schema as a new replica of the shard, then journaled in the shard's record as <em>joining</em>. Anti-entropy fills
    /// it; once it lacks little it is admitted (<see cref="IShardWriterGrain.AdmitReplica"/>) and serves. Safe to retry:
    /// the same key again returns the entry as it is now.
    /// </summary>
    Task<ShardEntry> AddReplica(int shard, string connection);

    /// <summary>
    /// Records what <paramref name="shard"/> is: a name and an owner (null leaves one as it is, empty removes it) and
    /// labels (a null value removes one), as one journaled change of its directory record; returns the record after it.
    /// </summary>
    Task<ShardEntry> SetShardMetadata(int shard, string? name, string? owner, IReadOnlyDictionary<string, string?> labels);

    /// <summary>
    /// Starts removing <paramref name="shard"/> (never shard 0): its record enters <c>sealing</c> (status <c>removing</c>),
    /// after which it takes no new replicas, metadata or primary moves. Asked again, it answers where the removal stands.
    /// </summary>
    Task<ShardEntry> RemoveShard(int shard);

    /// <summary>
    /// Moves <paramref name="shard"/>'s removal on to <paramref name="state"/>, the next of <see cref="ShardRemoval.States"/>
    /// (entering <c>draining</c>, with the heads its replicas were sealed at, which later states keep); a state already
    /// reached is answered as it is.
    /// Called by the removal's own steps.
    /// </summary>
    Task<ShardEntry> AdvanceShardRemoval(int shard, string state, IReadOnlyDictionary<int, long>? sealedHeads);

    /// <summary>Registered agents and the shards they follow, as recorded in shard 0.</summary>
    Task<IReadOnlyDictionary<string, IReadOnlyList<int>>> GetAgents();

    /// <summary>Actor types seen in any shard, with live and canceled counts.</summary>
    Task<IReadOnlyList<ActorTypeCount>> GetActorTypes();

    /// <summary>Actors of <paramref name="type"/> (all types when null) whose id starts with <paramref name="prefix"/>, by id, at most <paramref name="limit"/> (1..1000).</summary>
    Task<IReadOnlyList<ObjectLocation>> FindObjects(string? type, string? prefix, int limit);
}
