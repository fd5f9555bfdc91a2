namespace PR2.Client;

/// <summary>
/// The typed entry point for frontends: sends messages to actors and reads their records through an
/// Orleans cluster client. Actor ids are checked here first so that a bad id fails without a round trip;
/// the silo checks everything again. One instance is one session: it carries the read token of everything
/// it wrote and read, so its <see cref="ReadConsistency.Session"/> reads (the default) see its own writes
/// and never go back in time, whichever replica answers.
/// </summary>
public sealed class Pr2Client(IClusterClient cluster)
{
    private ReadToken _session = ReadToken.Empty;

    /// <summary>What this session has seen; hand it to another client (<see cref="Observe"/>) to continue the session there.</summary>
    public ReadToken SessionToken => Volatile.Read(ref _session);

    /// <summary>Adds what a token names to this session (e.g. a token from another process of the same user).</summary>
    public void Observe(ReadToken token)
    {
        var current = Volatile.Read(ref _session);
        while (true)
        {
            var merged = current.Merge(token);
            var seen = Interlocked.CompareExchange(ref _session, merged, current);
            if (ReferenceEquals(seen, current))
            {
                return;
            }

            current = seen;
        }
    }

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
        var message = new Message(messageId ?? MessageIds.New(), sender, receiver, kind, body ?? "", expectedVersion);
        return SendAsync(message);
    }

    /// <summary>Sends a fully built message (a first insert by its shard's insert path, anything else to its actor).</summary>
    public async Task<WriteAck> SendAsync(Message message)
    {
        if (message.Receiver is { IsReserved: true } reserved)
        {
            throw new Pr2Exception(ErrorCode.ReservedActor,
                $"{reserved} is kept by PR2 itself ({string.Join(", ", ActorRef.ReservedTypes.Select(t => t + "/*"))} in shard 0): change rules through the rules API and shards through the topology, not by messages");
        }

        var ack = await UnavailableCluster.Answer(() => cluster.SendMessage(message));
        Observe(ack.Token);
        return ack;
    }

    /// <summary>The actor's current record (status, version, state).</summary>
    public Task<ActorRecord> GetRecordAsync(int shard, string actorId) => UnavailableCluster.Answer(() => Actor(ActorRef.Create(shard, actorId)).GetRecord());

    /// <summary>An actor's record read in one snapshot of one replica, with the replica and the journal position it reflects.</summary>
    public async Task<RecordRead> ReadRecordAsync(int shard, string actorId, ReadConsistency consistency = ReadConsistency.Session)
    {
        var read = await UnavailableCluster.Answer(() => cluster.GetGrain<IReadGrain>(shard).GetRecord(actorId, consistency, SessionToken));
        Observe(read.Token);
        return read;
    }

    /// <summary>An actor's record as it was at a Lamport stamp (e.g. one from a <see cref="WriteAck"/>).</summary>
    public Task<RecordRead> ReadRecordAsOfAsync(int shard, string actorId, LamportStamp asOf) =>
        UnavailableCluster.Answer(() => cluster.GetGrain<IReadGrain>(shard).GetRecordAsOf(actorId, asOf));

    /// <summary>One page of the records of a type whose state contains <paramref name="containsJson"/>; pass the page's cursor for the next.</summary>
    public async Task<RecordPage> QueryRecordsAsync(int shard, string type, string? containsJson = null, string? cursor = null, int limit = 100,
        ReadConsistency consistency = ReadConsistency.Session)
    {
        var page = await UnavailableCluster.Answer(() => cluster.GetGrain<IReadGrain>(shard).Query(type, containsJson, cursor, limit, consistency, SessionToken));
        Observe(page.Token);
        return page;
    }

    /// <summary>
    /// Live changes of records of <paramref name="type"/> (or of the one actor <paramref name="actorId"/>) in
    /// <paramref name="shard"/>, in journal order, after <paramref name="afterPosition"/> (null: from now on), until
    /// cancelled. Resume after the last <see cref="RecordChange.Position"/> seen to miss nothing. New changes arrive
    /// within about <paramref name="pollInterval"/> (default 100 ms).
    /// </summary>
    public async IAsyncEnumerable<RecordChange> WatchAsync(int shard, string? type = null, string? actorId = null, long? afterPosition = null,
        TimeSpan? pollInterval = null, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var feed = cluster.GetGrain<IChangeFeedGrain>(shard);
        var after = afterPosition ?? await feed.Head();
        while (!cancellationToken.IsCancellationRequested)
        {
            ChangePage page;
            try
            {
                page = await feed.Read(after, type, actorId, 100).WaitAsync(cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                yield break;
            }

            foreach (var change in page.Changes)
            {
                yield return change;
            }

            // Nothing new in the journal: wait a little before asking again (otherwise ask again at once).
            if (page.NextAfter == after)
            {
                try
                {
                    await Task.Delay(pollInterval ?? TimeSpan.FromMilliseconds(100), cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    yield break;
                }
            }

            after = page.NextAfter;
        }
    }

    /// <summary>Journal entries of <paramref name="shard"/> from <paramref name="fromPosition"/> (inclusive), at most <paramref name="limit"/> (1..1000).</summary>
    public Task<IReadOnlyList<JournalEntry>> ReadJournalAsync(int shard, long fromPosition = 1, int limit = 100) =>
        cluster.GetGrain<IJournalReaderGrain>(shard).Read(fromPosition, limit);

    /// <summary>Shards, replicas, journal heads, and each agent's mark and lag per shard.</summary>
    public Task<ClusterStatus> GetStatusAsync() => UnavailableCluster.Answer(() => cluster.GetGrain<IStatusGrain>(0).GetStatus());

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

    /// <summary>Adds a rule, or replaces the one of the same name; the definition is JSON (see docs/rules.md).</summary>
    public Task<RuleInfo> PutRuleAsync(string definitionJson) => UnavailableCluster.Answer(() => Rules.Put(definitionJson));

    /// <summary>All rules.</summary>
    public Task<IReadOnlyList<RuleInfo>> GetRulesAsync() => Rules.List();

    /// <summary>One rule by name.</summary>
    public Task<RuleInfo> GetRuleAsync(string name) => Rules.Get(name);

    /// <summary>Pauses a rule: it stops where it is.</summary>
    public Task<RuleInfo> PauseRuleAsync(string name) => Rules.SetPaused(name, true);

    /// <summary>Resumes a paused rule from where it stopped.</summary>
    public Task<RuleInfo> ResumeRuleAsync(string name) => Rules.SetPaused(name, false);

    /// <summary>Removes a rule; what it already wrote stays.</summary>
    public Task RemoveRuleAsync(string name) => Rules.Remove(name);

    /// <summary>Entries parked by a rule (or by all rules when null).</summary>
    public Task<IReadOnlyList<ParkedEntry>> GetParkedAsync(string? rule = null) => Rules.GetParked(rule);

    /// <summary>Runs a rule again on its parked entries; returns how many were queued.</summary>
    public Task<int> RetryParkedAsync(string rule) => Rules.RetryParked(rule);

    /// <summary>Documents of a view kept by rules in <paramref name="shard"/>, by key.</summary>
    public Task<IReadOnlyList<ViewDocument>> QueryViewAsync(int shard, string view, string? keyPrefix = null, int limit = 100) =>
        cluster.GetGrain<IViewGrain>(shard).Query(view, keyPrefix, limit);

    /// <summary>Delivers what rules wrote to <paramref name="shard"/>'s outbox now (it is also delivered continuously).</summary>
    public Task<int> DeliverOutboxAsync(int shard) => cluster.GetGrain<IOutboxRelayGrain>(shard).DeliverNow();

    private IDirectoryGrain Directory => cluster.GetGrain<IDirectoryGrain>(0);

    private IRulesGrain Rules => cluster.GetGrain<IRulesGrain>(0);

    private IActorGrain Actor(ActorRef actor) => cluster.GetGrain<IActorGrain>(actor.Shard, actor.ActorId, null);
}
