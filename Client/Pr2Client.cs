using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Streams;

namespace PR2.Client;

/// <summary>
/// The entry point for frontends: sends messages to actors and reads their records through an Orleans cluster client.
/// Register one per process (a singleton) and open a session (<see cref="OpenSession"/>) per unit of work; the client
/// is itself a session too (its own read token), for programs that are one unit of work. Actor ids are checked here
/// first so that a bad id fails without a round trip; the silo checks everything again. Retriable refusals are retried
/// with the same MessageId when <paramref name="retry"/> asks for it; typed bodies and states use
/// <paramref name="json"/> (default <see cref="Pr2Json.Default"/>).
/// </summary>
public sealed class Pr2Client(IClusterClient cluster, Pr2RetryOptions? retry = null, JsonSerializerOptions? json = null) : IPr2Client
{
    // This client's own session, for callers that use the client as one; new sessions share its retries and options.
    // Catching up reads the largest pages the feed gives: with small ones a watch behind a busy shard may never reach its head.
    private const int ChangePageSize = 1000;

    private Pr2Session Session { get; } = new(cluster, RetryPipeline.Build(retry ?? new Pr2RetryOptions()), json ?? Pr2Json.Default);

    public IPr2Session OpenSession() => Session.Sibling();

    /// <summary>What this client's own session has seen; hand it to another client (<see cref="Observe"/>) to continue the session there.</summary>
    public ReadToken SessionToken => Session.SessionToken;

    /// <summary>Adds what a token names to this client's own session (e.g. a token from another process of the same user).</summary>
    public void Observe(ReadToken token) => Session.Observe(token);

    /// <summary>
    /// Sends a message and returns its acknowledgement once the journal entry committed. Pass the same
    /// <paramref name="messageId"/> to retry safely: the first acknowledgement comes back again.
    /// Refusals throw <see cref="Pr2Exception"/>.
    /// </summary>
    public Task<WriteAck> SendAsync(int shard, string actorId, MessageKind kind, string? body, Guid? messageId = null, long? expectedVersion = null,
        string sender = "client", CancellationToken cancellationToken = default) =>
        Session.SendAsync(shard, actorId, kind, body, messageId, expectedVersion, sender, cancellationToken);

    /// <summary>Sends a fully built message (a first insert by its shard's insert path, anything else to its actor).</summary>
    public Task<WriteAck> SendAsync(Message message, CancellationToken cancellationToken = default) => Session.SendAsync(message, cancellationToken);

    /// <inheritdoc />
    public Task<BatchAck> SendBatchAsync(int shard, IReadOnlyList<Message> messages, CancellationToken cancellationToken = default) =>
        Session.SendBatchAsync(shard, messages, cancellationToken);

    public Task<WriteAck> SendAsync<T>(int shard, string actorId, MessageKind kind, T body, Guid? messageId = null, long? expectedVersion = null,
        string sender = "client", CancellationToken cancellationToken = default) =>
        Session.SendAsync(shard, actorId, kind, body, messageId, expectedVersion, sender, cancellationToken);

    public Task<WriteAck> InsertAsync<T>(int shard, string actorId, T body, Guid? messageId = null, CancellationToken cancellationToken = default) =>
        Session.InsertAsync(shard, actorId, body, messageId, cancellationToken);

    public Task<WriteAck> ModifyAsync<T>(int shard, string actorId, T patch, long? expectedVersion = null, Guid? messageId = null,
        CancellationToken cancellationToken = default) =>
        Session.ModifyAsync(shard, actorId, patch, expectedVersion, messageId, cancellationToken);

    public Task<WriteAck> CancelAsync(int shard, string actorId, long? expectedVersion = null, Guid? messageId = null, CancellationToken cancellationToken = default) =>
        Session.CancelAsync(shard, actorId, expectedVersion, messageId, cancellationToken);

    /// <summary>The actor's current record (status, version, state), from its actor.</summary>
    public Task<ActorRecord> GetRecordAsync(int shard, string actorId, CancellationToken cancellationToken = default) =>
        UnavailableCluster.Answer(() => Actor(ActorRef.Create(shard, actorId)).GetRecord(), cancellationToken);

    /// <summary>An actor's record read in one snapshot of one replica, with the replica and the journal position it reflects.</summary>
    public Task<RecordRead> ReadRecordAsync(int shard, string actorId, ReadConsistency consistency = ReadConsistency.Session,
        CancellationToken cancellationToken = default) =>
        Session.ReadRecordAsync(shard, actorId, consistency, cancellationToken);

    public Task<Pr2Record<T>> ReadRecordAsync<T>(int shard, string actorId, ReadConsistency consistency = ReadConsistency.Session,
        CancellationToken cancellationToken = default) =>
        Session.ReadRecordAsync<T>(shard, actorId, consistency, cancellationToken);

    /// <summary>An actor's record as it was at a Lamport stamp (e.g. one from a <see cref="WriteAck"/>).</summary>
    public Task<RecordRead> ReadRecordAsOfAsync(int shard, string actorId, LamportStamp asOf, CancellationToken cancellationToken = default) =>
        Session.ReadRecordAsOfAsync(shard, actorId, asOf, cancellationToken);

    /// <summary>One page of the records of a type whose state contains <paramref name="containsJson"/>; pass the page's cursor for the next.</summary>
    public Task<RecordPage> QueryRecordsAsync(int shard, string type, string? containsJson = null, string? cursor = null, int limit = 100,
        ReadConsistency consistency = ReadConsistency.Session, CancellationToken cancellationToken = default) =>
        Session.QueryRecordsAsync(shard, type, containsJson, cursor, limit, consistency, cancellationToken);

    /// <summary>
    /// Live changes of records of <paramref name="type"/> (or of the one actor <paramref name="actorId"/>) in
    /// <paramref name="shard"/>, in journal order, after <paramref name="afterPosition"/> on the current primary (null:
    /// from now on), until cancelled. New changes arrive within about <paramref name="pollInterval"/> (default 100 ms).
    /// Resume with the last change's <see cref="RecordChange.Resume"/> (the other overload) to miss nothing, also
    /// across a change of primary.
    /// </summary>
    public IAsyncEnumerable<RecordChange> WatchAsync(int shard, string? type = null, string? actorId = null, long? afterPosition = null,
        TimeSpan? pollInterval = null, CancellationToken cancellationToken = default) =>
        WatchAsync(shard, afterPosition is null ? null : WatchPosition.At(afterPosition.Value), type, actorId, pollInterval, cancellationToken);

    /// <summary>
    /// Live changes after <paramref name="after"/> (a <see cref="RecordChange.Resume"/> or <see cref="WatchPosition.Parse"/>
    /// of one; null: from now on). The watch reads what it lacks from the journal page by page, then follows the shard's
    /// journal stream (pushed, no polling) when the cluster client has the PR2 stream provider (<c>AddPr2Client</c> adds
    /// it; without it, it polls every <paramref name="pollInterval"/>). It follows the shard's primary: it rides out
    /// retriable errors (a fail-over in progress) and goes on from what it delivered, with nothing skipped and nothing
    /// repeated (a message committed twice across a fail-over, held under two origins, can come twice). A reader that
    /// falls 1,000 changes behind the stream reads on from the journal at its own pace. Other errors end it.
    /// </summary>
    public async IAsyncEnumerable<RecordChange> WatchAsync(int shard, WatchPosition? after, string? type = null, string? actorId = null,
        TimeSpan? pollInterval = null, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var feed = cluster.GetGrain<IChangeFeedGrain>(shard);
        var place = after;
        while (place is null && !cancellationToken.IsCancellationRequested)
        {
            place = await AskAsync(feed.Now, cancellationToken);
        }

        var streams = cluster.ServiceProvider.GetKeyedService<IStreamProvider>(Pr2Streams.ProviderName);
        // The feed filters by the actor when one is given (its type then says nothing more), so the stream is its type's.
        var streamType = actorId is not null ? new ActorRef(shard, actorId).Type : type;
        while (place is not null && !cancellationToken.IsCancellationRequested)
        {
            // Catch up from the journal, page after page, until a page reaches the primary's head.
            var page = await ReadPageAsync(feed, place, type, actorId, cancellationToken);
            if (page is null)
            {
                continue; // a fail-over in progress (or cancelled): ask again from the same place
            }

            foreach (var change in page.Changes)
            {
                yield return change;
            }

            place = page.Next!;
            if (!page.AtHead)
            {
                continue;
            }

            if (streams is null)
            {
                if (page.Changes.Count == 0)
                {
                    await PauseAsync(pollInterval ?? TimeSpan.FromMilliseconds(100), cancellationToken);
                }

                continue;
            }

            // Live from the stream until it ends (the reader fell behind, or the stream lost entries): then catch up again.
            var live = await StartLiveAsync(streams, shard, streamType, place);
            if (live is null)
            {
                await PauseAsync(TimeSpan.FromMilliseconds(500), cancellationToken); // the pub-sub store did not answer: read on meanwhile
                continue;
            }

            WatchMetrics.WentLive.Add(1, new KeyValuePair<string, object?>("shard", shard));
            try
            {
                while (await NextAsync(live, cancellationToken))
                {
                    while (live.Changes.TryRead(out var change))
                    {
                        place = change.Resume!;
                        if (actorId is null || change.Record.Actor.ActorId == actorId)
                        {
                            yield return change;
                        }
                    }
                }
            }
            finally
            {
                await live.StopAsync();
            }

            if (!live.Overflowed)
            {
                // The stream failed (or told it the entries it lacks left its cache): catch up, but not in a tight loop.
                await PauseAsync(TimeSpan.FromMilliseconds(200), cancellationToken);
            }
        }
    }

    private static Task<ChangePage?> ReadPageAsync(IChangeFeedGrain feed, WatchPosition place, string? type, string? actorId, CancellationToken cancellationToken) =>
        AskAsync(() => feed.ReadAfter(place, type, actorId, ChangePageSize), cancellationToken);

    // One call to the change feed; null (after a pause) when it failed in a way a fail-over or a lost gateway explains,
    // or when cancelled. Other errors end the watch.
    private static async Task<T?> AskAsync<T>(Func<Task<T>> call, CancellationToken cancellationToken)
        where T : class
    {
        try
        {
            return await call().WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return null;
        }
        catch (Exception e) when (e is Pr2Exception { IsRetriable: true } or OrleansException or TimeoutException)
        {
            await PauseAsync(TimeSpan.FromMilliseconds(500), cancellationToken);
            return null;
        }
    }

    // Subscribing is not abandoned half-way (a subscription registered after its caller gave up would stay behind); it
    // is bounded by the cluster's response timeout.
    private static async Task<LiveChanges?> StartLiveAsync(IStreamProvider streams, int shard, string? type, WatchPosition place)
    {
        try
        {
            return await LiveChanges.StartAsync(streams, shard, type, place);
        }
        catch (Exception e) when (e is OrleansException or TimeoutException || e is Pr2Exception { IsRetriable: true })
        {
            return null;
        }
    }

    // False when the live part ended: overflow, a stream error, or cancellation.
    private static async Task<bool> NextAsync(LiveChanges live, CancellationToken cancellationToken)
    {
        try
        {
            return await live.Changes.WaitToReadAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        catch (Exception)
        {
            return false; // the stream's error (entries left its cache, the subscription failed): catch up from the journal
        }
    }

    private static async Task PauseAsync(TimeSpan delay, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(delay, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // The caller checks the token.
        }
    }

    /// <summary>Journal entries of <paramref name="shard"/> from <paramref name="fromPosition"/> (inclusive), at most <paramref name="limit"/> (1..1000).</summary>
    public Task<IReadOnlyList<JournalEntry>> ReadJournalAsync(int shard, long fromPosition = 1, int limit = 100, CancellationToken cancellationToken = default) =>
        UnavailableCluster.Answer(() => cluster.GetGrain<IJournalReaderGrain>(shard).Read(fromPosition, limit), cancellationToken);

    /// <summary>The last position of <paramref name="shard"/>'s journal (on the replica its change feed reads).</summary>
    public Task<long> GetHeadAsync(int shard, CancellationToken cancellationToken = default) =>
        UnavailableCluster.Answer(() => cluster.GetGrain<IChangeFeedGrain>(shard).Head(), cancellationToken);

    /// <summary>Shards, replicas, journal heads, and each agent's mark and lag per shard.</summary>
    public Task<ClusterStatus> GetStatusAsync(CancellationToken cancellationToken = default) =>
        UnavailableCluster.Answer(() => cluster.GetGrain<IStatusGrain>(0).GetStatus(), cancellationToken);

    /// <summary>Makes <paramref name="agent"/> catch up with <paramref name="shard"/>'s journal (on a replica, default the primary) now; returns its mark.</summary>
    public Task<long> CatchUpAsync(string agent, int shard, int replica = 0, CancellationToken cancellationToken = default) =>
        UnavailableCluster.Answer(() => cluster.GetGrain<IAgentGrain>($"{agent}/{shard}@{replica}").CatchUp(), cancellationToken);

    /// <summary>The shard map recorded in the directory (shard 0).</summary>
    public Task<IReadOnlyList<ShardEntry>> GetShardsAsync(CancellationToken cancellationToken = default) =>
        UnavailableCluster.Answer(() => Directory.GetShards(), cancellationToken);

    /// <summary>
    /// Records what <paramref name="shard"/> is in the directory, as one journaled change: a name and an owner (null
    /// leaves one as it is, empty removes it) and labels (a null value removes one). Returns the shard's entry after it.
    /// </summary>
    public Task<ShardEntry> SetShardMetadataAsync(int shard, string? name = null, string? owner = null,
        IReadOnlyDictionary<string, string?>? labels = null, CancellationToken cancellationToken = default) =>
        UnavailableCluster.Answer(() => Directory.SetShardMetadata(shard, name, owner, labels ?? new Dictionary<string, string?>()), cancellationToken);

    /// <summary>
    /// Adds a shard to the running cluster (<see cref="IDirectoryGrain.AddShard"/>): every silo takes it up from the
    /// directory; safe to retry. Returns its directory entry.
    /// </summary>
    public Task<ShardEntry> AddShardAsync(NewShard shard, CancellationToken cancellationToken = default) =>
        UnavailableCluster.Answer(() => Directory.AddShard(shard), cancellationToken);

    /// <summary>
    /// Moves <paramref name="shard"/>'s primary to replica <paramref name="replica"/> (a planned switch-over, see
    /// <see cref="IShardWriterGrain.MovePrimary"/>): writes meanwhile wait rather than fail, nothing acknowledged is lost.
    /// Returns the primary's index afterwards.
    /// </summary>
    public Task<int> MovePrimaryAsync(int shard, int replica, CancellationToken cancellationToken = default) =>
        UnavailableCluster.Answer(() => cluster.GetGrain<IShardWriterGrain>(shard).MovePrimary(replica), cancellationToken);

    /// <summary>
    /// Removes <paramref name="shard"/> (never shard 0) and, unless <paramref name="wait"/> is false, follows the removal to its
    /// end: every replica is sealed (no write is taken again; what was acknowledged stays, and a retry of it gets its
    /// acknowledgement), agents, rules and rule messages finish what the sealed journal holds, then every silo drops the
    /// shard and its pools, after which its databases may be dropped. Writes then answer <see cref="ErrorCode.ShardRemoved"/>.
    /// Safe to call again (it follows the removal under way). <paramref name="progress"/> gets each state and what it waits
    /// for; a state that lasts <paramref name="stallTimeout"/> (two minutes by default) ends the wait with a retriable error,
    /// the removal going on.
    /// </summary>
    public Task<ShardRemovalStatus> RemoveShardAsync(int shard, bool wait = true, IProgress<ShardRemovalStatus>? progress = null, TimeSpan? stallTimeout = null,
        CancellationToken cancellationToken = default) =>
        ShardRemovals.RemoveAsync(cluster, shard, wait, stallTimeout ?? TimeSpan.FromMinutes(2), progress, cancellationToken);

    /// <summary>
    /// Adds a replica to <paramref name="shard"/> (not shard 0) and waits until it serves: its database, named by the
    /// configuration key <paramref name="connection"/> that every silo sets (under <c>Pr2:Connections:</c>), is created and
    /// recorded joining, anti-entropy fills it while writes go on, and the writer admits it once it lacks little; from then
    /// it serves reads and counts toward the ack policy. <paramref name="progress"/> reports the entries it holds. A replica
    /// that takes no entries for <paramref name="stallTimeout"/> (one minute by default) ends the wait with a retriable
    /// error; it stays joining, and calling this again with the same key follows it (as after an interrupted wait).
    /// </summary>
    public Task<ShardEntry> AddReplicaAsync(int shard, string connection, IProgress<TransferProgress>? progress = null, TimeSpan? stallTimeout = null,
        CancellationToken cancellationToken = default) =>
        ReplicaJoins.AddAsync(cluster, shard, connection, stallTimeout ?? TimeSpan.FromMinutes(1), progress, cancellationToken);

    /// <summary>Every projection following <paramref name="shard"/> (the records view, the object directory, rules), with each replica's mark.</summary>
    public Task<IReadOnlyList<ProjectionStatus>> ListProjectionsAsync(int shard, CancellationToken cancellationToken = default) =>
        UnavailableCluster.Answer(() => cluster.GetGrain<IProjectionsGrain>(shard).List(), cancellationToken);

    /// <summary>Where <paramref name="projection"/> of <paramref name="shard"/> stands on each replica, with its last rebuild.</summary>
    public Task<ProjectionStatus> GetProjectionAsync(int shard, string projection, CancellationToken cancellationToken = default) =>
        UnavailableCluster.Answer(() => cluster.GetGrain<IProjectionsGrain>(shard).Status(projection), cancellationToken);

    /// <summary>
    /// Rebuilds <paramref name="projection"/> of <paramref name="shard"/> (<c>records</c>, or <c>rule-{name}</c>: a rule's views) from the journal, blue/green,
    /// and waits until every replica has swapped its rebuilt view in: each folds its journal into a shadow table while writes
    /// and reads go on against the live view, then swaps it in atomically (a reader sees the old view or the new one, each with
    /// the mark it reflects). <paramref name="progress"/> reports the positions folded. A rebuild that folds nothing for
    /// <paramref name="stallTimeout"/> (one minute by default) ends the wait with a retriable error; it goes on, and calling
    /// this again follows it rather than starting over (<paramref name="restart"/> starts it over, e.g. after a fix to the fold
    /// was deployed during it). Returns the status once swapped in; a rebuild canceled meanwhile
    /// (<see cref="CancelProjectionRebuildAsync"/>) ends the wait with <see cref="ErrorCode.OperationCanceled"/>.
    /// </summary>
    public Task<ProjectionStatus> RebuildProjectionAsync(int shard, string projection, IProgress<TransferProgress>? progress = null, TimeSpan? stallTimeout = null,
        bool restart = false, CancellationToken cancellationToken = default) =>
        ProjectionRebuilds.RebuildAsync(cluster, shard, projection, restart, stallTimeout ?? TimeSpan.FromMinutes(1), progress, cancellationToken);

    /// <summary>
    /// Cancels the rebuild of <paramref name="projection"/> in progress on every replica of <paramref name="shard"/>: each drops
    /// its shadow and keeps its live view (state <c>canceled</c>); a replica that had already swapped its rebuilt view in keeps
    /// it (state <c>done</c>). Safe to retry; returns where each replica stands.
    /// </summary>
    public Task<ProjectionStatus> CancelProjectionRebuildAsync(int shard, string projection, CancellationToken cancellationToken = default) =>
        UnavailableCluster.Answer(() => cluster.GetGrain<IProjectionsGrain>(shard).Cancel(projection), cancellationToken);

    /// <summary>
    /// Removes replica <paramref name="replica"/> from <paramref name="shard"/> (see <see cref="IShardWriterGrain.RemoveReplica"/>):
    /// never the primary (move it first) nor the last member; writes wait for the switch rather than fail. Returns the shard's
    /// directory entry afterwards, which lists the replica as removed.
    /// </summary>
    public async Task<ShardEntry> RemoveReplicaAsync(int shard, int replica, CancellationToken cancellationToken = default)
    {
        if (!await UnavailableCluster.Answer(() => cluster.GetGrain<IShardWriterGrain>(shard).RemoveReplica(replica), cancellationToken))
        {
            throw new Pr2Exception(ErrorCode.ShardUnavailable, $"shard {shard}: replica {replica} was not recorded removed; retry (pr2 shards describe {shard} says whether it is)");
        }

        return (await GetShardsAsync(cancellationToken)).SingleOrDefault(s => s.Shard == shard)
            ?? throw new Pr2Exception(ErrorCode.ShardUnavailable, $"shard {shard}: replica {replica} was removed, but the directory did not list the shard when read back; pr2 shards describe {shard} shows it");
    }

    /// <summary>
    /// Writes a consistent copy of one replica of <paramref name="shard"/> (the primary unless <paramref name="replica"/>)
    /// into <paramref name="directory"/> (new or empty): one file per table and <c>manifest.json</c>, written last. Writes go
    /// on meanwhile; the copy is the replica as it was when the backup began. Returns the manifest.
    /// </summary>
    public Task<BackupManifest> BackupAsync(int shard, string directory, int? replica = null, IProgress<TransferProgress>? progress = null,
        CancellationToken cancellationToken = default) =>
        ShardBackups.BackupAsync(cluster, shard, directory, replica, progress, cancellationToken);

    /// <summary>
    /// Brings replica <paramref name="replica"/> of <paramref name="shard"/> back from the backup in <paramref name="directory"/>
    /// (see <see cref="IReplicaRestoreGrain"/>): into a database that does not exist (a server replaced after it was lost),
    /// or in place of one with <paramref name="replace"/> (never the primary's). All or nothing; anti-entropy then brings it
    /// up to date.
    /// </summary>
    public Task<RestoreResult> RestoreAsync(int shard, int replica, string directory, bool replace = false, IProgress<TransferProgress>? progress = null,
        CancellationToken cancellationToken = default) =>
        ShardBackups.RestoreAsync(cluster, shard, replica, directory, replace, progress, cancellationToken);

    /// <summary>Registered agents and the shards each follows.</summary>
    public Task<IReadOnlyDictionary<string, IReadOnlyList<int>>> GetAgentsAsync(CancellationToken cancellationToken = default) =>
        UnavailableCluster.Answer(() => Directory.GetAgents(), cancellationToken);

    /// <summary>Actor types seen in any shard, with live and canceled counts.</summary>
    public Task<IReadOnlyList<ActorTypeCount>> GetActorTypesAsync(CancellationToken cancellationToken = default) =>
        UnavailableCluster.Answer(() => Directory.GetActorTypes(), cancellationToken);

    /// <summary>Object directory lookup: actors of a type (or all) whose id starts with a prefix, and their shards.</summary>
    public Task<IReadOnlyList<ObjectLocation>> FindObjectsAsync(string? type = null, string? prefix = null, int limit = 100, CancellationToken cancellationToken = default) =>
        UnavailableCluster.Answer(() => Directory.FindObjects(type, prefix, limit), cancellationToken);

    /// <summary>Adds a rule, or replaces the one of the same name; the definition is JSON (see docs/rules.md).</summary>
    public Task<RuleInfo> PutRuleAsync(string definitionJson, CancellationToken cancellationToken = default) =>
        UnavailableCluster.Answer(() => Rules.Put(definitionJson), cancellationToken);

    /// <summary>All rules.</summary>
    public Task<IReadOnlyList<RuleInfo>> GetRulesAsync(CancellationToken cancellationToken = default) => UnavailableCluster.Answer(() => Rules.List(), cancellationToken);

    /// <summary>One rule by name.</summary>
    public Task<RuleInfo> GetRuleAsync(string name, CancellationToken cancellationToken = default) => UnavailableCluster.Answer(() => Rules.Get(name), cancellationToken);

    /// <summary>Pauses a rule: it stops where it is.</summary>
    public Task<RuleInfo> PauseRuleAsync(string name, CancellationToken cancellationToken = default) =>
        UnavailableCluster.Answer(() => Rules.SetPaused(name, true), cancellationToken);

    /// <summary>Resumes a paused rule from where it stopped.</summary>
    public Task<RuleInfo> ResumeRuleAsync(string name, CancellationToken cancellationToken = default) =>
        UnavailableCluster.Answer(() => Rules.SetPaused(name, false), cancellationToken);

    /// <summary>Removes a rule; what it already wrote stays.</summary>
    public Task RemoveRuleAsync(string name, CancellationToken cancellationToken = default) =>
        UnavailableCluster.Answer(async () => { await Rules.Remove(name); return true; }, cancellationToken);

    /// <summary>Entries parked by a rule (or by all rules when null).</summary>
    public Task<IReadOnlyList<ParkedEntry>> GetParkedAsync(string? rule = null, CancellationToken cancellationToken = default) =>
        UnavailableCluster.Answer(() => Rules.GetParked(rule), cancellationToken);

    /// <summary>Runs a rule again on its parked entries; returns how many were queued.</summary>
    public Task<int> RetryParkedAsync(string rule, CancellationToken cancellationToken = default) =>
        UnavailableCluster.Answer(() => Rules.RetryParked(rule), cancellationToken);

    /// <summary>Documents of a view kept by rules in <paramref name="shard"/>, by key.</summary>
    public Task<IReadOnlyList<ViewDocument>> QueryViewAsync(int shard, string view, string? keyPrefix = null, int limit = 100, CancellationToken cancellationToken = default) =>
        UnavailableCluster.Answer(() => cluster.GetGrain<IViewGrain>(shard).Query(view, keyPrefix, limit), cancellationToken);

    /// <summary>Delivers what rules wrote to <paramref name="shard"/>'s outbox now (it is also delivered continuously).</summary>
    public Task<int> DeliverOutboxAsync(int shard, CancellationToken cancellationToken = default) =>
        UnavailableCluster.Answer(() => cluster.GetGrain<IOutboxRelayGrain>(shard).DeliverNow(), cancellationToken);

    private IDirectoryGrain Directory => cluster.GetGrain<IDirectoryGrain>(0);

    private IRulesGrain Rules => cluster.GetGrain<IRulesGrain>(0);

    private IActorGrain Actor(ActorRef actor) => cluster.GetGrain<IActorGrain>(actor.Shard, actor.ActorId, null);
}
