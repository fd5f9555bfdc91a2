namespace PR2.Client;

/// <summary>
/// The typed entry point for frontends: sends messages to actors and reads their records through an
/// Orleans cluster client. Actor ids are checked here first so that a bad id fails without a round trip;
/// the silo checks everything again.
/// </summary>
public sealed class Pr2Client(IClusterClient cluster)
{
    /// <summary>
    /// Sends a message and returns its acknowledgement once the journal entry committed. Pass the same
    /// <paramref name="messageId"/> to retry safely: the first acknowledgement comes back again.
    /// Refusals throw <see cref="Pr2Exception"/>.
    /// </summary>
    public Task<WriteAck> SendAsync(
        int shard,
        string actorId,
        MessageKind kind,
        string? body,
        Guid? messageId = null,
        long? expectedVersion = null,
        string sender = "client")
    {
        var receiver = ActorRef.Create(shard, actorId);
        var message = new Message(messageId ?? Guid.NewGuid(), sender, receiver, kind, body ?? "", expectedVersion);
        return SendAsync(message);
    }

    /// <summary>Sends a fully built message.</summary>
    public Task<WriteAck> SendAsync(Message message) => Actor(message.Receiver).Send(message);

    /// <summary>The actor's current record (status, version, state).</summary>
    public Task<ActorRecord> GetRecordAsync(int shard, string actorId) => Actor(ActorRef.Create(shard, actorId)).GetRecord();

    /// <summary>Journal entries of <paramref name="shard"/> from <paramref name="fromPosition"/> (inclusive), at most <paramref name="limit"/> (1..1000).</summary>
    public Task<IReadOnlyList<JournalEntry>> ReadJournalAsync(int shard, long fromPosition = 1, int limit = 100) =>
        cluster.GetGrain<IJournalReaderGrain>(shard).Read(fromPosition, limit);

    /// <summary>Shards, replicas, journal heads, and each agent's mark and lag per shard.</summary>
    public Task<ClusterStatus> GetStatusAsync() => cluster.GetGrain<IStatusGrain>(0).GetStatus();

    /// <summary>Makes <paramref name="agent"/> catch up with <paramref name="shard"/>'s journal (on a replica, default the primary) now; returns its mark.</summary>
    public Task<long> CatchUpAsync(string agent, int shard, int replica = 0) => cluster.GetGrain<IAgentGrain>($"{agent}/{shard}@{replica}").CatchUp();

    /// <summary>The shard map recorded in the directory (shard 0).</summary>
    public Task<IReadOnlyList<ShardEntry>> GetShardsAsync() => Directory.GetShards();

    /// <summary>Registered agents and the shards each follows.</summary>
    public Task<IReadOnlyDictionary<string, IReadOnlyList<int>>> GetAgentsAsync() => Directory.GetAgents();

    /// <summary>Actor types seen in any shard, with live and canceled counts.</summary>
    public Task<IReadOnlyList<ActorTypeCount>> GetActorTypesAsync() => Directory.GetActorTypes();

    /// <summary>Object directory lookup: actors of a type (or all) whose id starts with a prefix, and their shards.</summary>
    public Task<IReadOnlyList<ObjectLocation>> FindObjectsAsync(string? type = null, string? prefix = null, int limit = 100) =>
        Directory.FindObjects(type, prefix, limit);

    private IDirectoryGrain Directory => cluster.GetGrain<IDirectoryGrain>(0);

    private IActorGrain Actor(ActorRef actor) => cluster.GetGrain<IActorGrain>(actor.Shard, actor.ActorId, null);
}
