using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Orleans.Concurrency;
using PR2.Grains.Agents;
using PR2.Grains.Configuration;
using PR2.Grains.Replication;
using PR2.Grains.Storage;
using PR2.Grains.Writing;

namespace PR2.Grains;

/// <summary>
/// Hosts the <see cref="JournalWriter"/> of one shard and decides the shard's primary. Reentrant so that
/// appends from many actors queue up while a group commit is in flight.
/// <para>
/// Primary: on activation, the reachable replica with the highest version vector (ties: the lowest index).
/// Fail over: when a commit fails because the primary cannot be reached, the writer stops taking work for
/// this shard, picks the reachable replica with the highest vector, takes a term above every epoch it reads,
/// fences the reachable replicas with it and gathers their entries into the new primary (<see cref="WriterTakeover"/>),
/// opens there, and the appends that were refused are retried there (safe: MessageIds are unique), all within
/// <see cref="FailOverBudget"/>; past it the caller gets a retriable error. If another activation takes a
/// replica over, this one is fenced and deactivates; it never reopens, so two activations cannot take turns.
/// </para>
/// </summary>
[Reentrant]
public sealed class ShardWriterGrain(
    ShardRegistry shards, TopologyFollower topology, AgentCatalog agents, LocalJournalWriters localWriters, RecentEntries recentEntries, IOptions<WriteOptions> options, ILogger<ShardWriterGrain> logger)
    : Grain, IShardWriterGrain
{
    /// <summary>How long an append may spend waiting for a fail-over before it is refused (retriable).</summary>
    public static readonly TimeSpan FailOverBudget = TimeSpan.FromSeconds(5);

    // An append without an answer for this long makes the writer probe its primary; a probe (or a replica's
    // vector read when choosing a primary) without an answer for ProbeTimeout counts as unreachable. Short,
    // so that detecting a stalled server and failing over fit in a caller's 5 s together.
    private static readonly TimeSpan ProbeAfter = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(1);

    // Actors on this silo append to the published writer directly, so the grain may see no calls for a long
    // time; this timer keeps the activation, and with it the writer, alive.
    private static readonly TimeSpan KeepAlivePeriod = TimeSpan.FromMinutes(1);

    // Entries per push while a replica catches up before a move.
    private const int CatchUpBatch = 1000;

    // Bound on the MessageIds kept in doubt (a long outage under load); past it, new ones are not tracked.
    private const int MaxInDoubt = 100_000;

    private Task<JournalWriter>? _opening;

    // Set once a replica was found retired (the shard's removal began): no writer opens again, so none is tried.
    private Pr2Exception? _retired;

    // The open writer's replication gate, when the ack policy needs more than the primary.
    private ReplicationGate? _gate;

    // MessageIds that a writer this activation gave up may still commit (in flight when its replica stopped answering,
    // or failed on the connection), with that replica and the writer's epoch: until the replica's epoch has been moved
    // past it (which waits for the head's row lock, so nothing of that writer can commit afterwards) and the replica
    // searched, a refusal of such a MessageId would not be final (FindAccepted).
    private readonly Dictionary<Guid, (int Replica, long Epoch)> _inDoubt = [];

    // Set once a given-up writer held more doubts than _inDoubt keeps: from then on, in this activation, every write
    // that went through a given-up writer counts as maybe written (its Duplicate is its own, its refusal not final).
    private bool _doubtsOverflowed;

    // Replicas a writer of an earlier activation (a silo killed, a grain moved) may have committed to that this activation
    // has not fenced and gathered into its primary: unreachable at the takeover, or their gather failed. Their entries
    // come later by anti-entropy, so until each is fenced and gathered no refusal is final (SettleOlderWritersAsync).
    private HashSet<int> _unsettled = [];

    // The replicas the open writer's term fenced (at its takeover or when it settled them later): a replica at that term
    // and not in here may be another writer's that took the same term, so it is never counted as fenced.
    private HashSet<int> _fencedWithTerm = [];

    // What a strong read's replica must hold, per origin: every version vector this activation read and what its given-up
    // writers acknowledged. Entries acknowledged before this activation were committed before it read the vectors, so
    // they are in here, unless they are only on replicas it has not heard from (_unheard).
    private readonly Dictionary<Guid, long> _acknowledged = [];

    // Per origin, acknowledged entries declared lost after a restore (no replica held them): from Held to Acknowledged.
    private readonly Dictionary<Guid, (long Held, long Acknowledged)> _lost = [];
    private HashSet<int>? _unheard;

    // A planned move of the primary (MovePrimary): the one in progress, which a second move waits for; while its new writer
    // opens, the old primary and the target (the writer opens on the target only if it gathered the old primary); and
    // why the target could not take over, if it could not.
    private Task? _moving;

    // The replica the last writer of this activation opened on (the configured order's first before any).
    private int _lastPrimary;

    // The highest term this activation took: a later takeover takes one above it even when the replicas it reaches now
    // were never fenced with it, so no fence of an earlier writer of its own can land on the new one.
    private long _lastTerm;
    private (int From, int To)? _move;

    // Set while the directory may record members this silo's set lacks (at activation; after an admission): the next
    // writer reads the directory first, and does not open until it has.
    private bool _membershipInDoubt;

    // The directory change that makes a replica a member (or removes it), while its outcome is not known: sent again as it
    // is (the same MessageId) until it is, so that a late commit of it cannot leave the writer counting other members than
    // recorded.
    private (int Replica, bool Remove, Message Change)? _membershipRecord;
    private string? _moveFailure;

    // Why the last admission or removal did not happen, for its caller.
    private string? _membershipFailure;

    private int ShardCode => (int)this.GetPrimaryKeyLong();

    private ShardReplicaSet Set => shards.Get(ShardCode);

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        this.RegisterGrainTimer(() =>
        {
            if (shards.IsRemoved(ShardCode))
            {
                DeactivateOnIdle(); // a removed shard: no writer, and nothing to answer from here
            }

            return Task.CompletedTask;
        }, new GrainTimerCreationOptions(KeepAlivePeriod, KeepAlivePeriod) { KeepAlive = true });
        this.RegisterGrainTimer(FenceReturnedAsync, new GrainTimerCreationOptions(ProbeAfter, ProbeAfter) { Interleave = true });
        return ActivateAsync();
    }

    private async Task ActivateAsync()
    {
        // A shard added a moment ago on another silo may not have reached this one: the directory says.
        await topology.KnowsAsync(ShardCode);
        // This silo may not have followed a replica admitted a moment ago (by this grain's previous activation, on another
        // silo): the first writer reads the directory's replicas before it opens (shard 0's are configured).
        _membershipInDoubt = ShardCode != 0;
    }

    // A replica the takeover could not reach keeps the old term. Nothing of an older writer can be acknowledged there (the
    // fence of the others saw to it), but an actor on another silo reading it would take it for the primary (its
    // primary_term is its epoch). Fenced as soon as it answers again, it says it is not.
    private async Task FenceReturnedAsync()
    {
        if (_opening is not { IsCompletedSuccessfully: true } opening || !opening.Result.IsOpen || Set.Live.All(_fencedWithTerm.Contains))
        {
            return;
        }

        var writer = opening.Result;
        var fenced = await WriterTakeover.FenceAsync(Set, Set.Live.Except(_fencedWithTerm), writer.Epoch, ProbeTimeout);
        if (IsOpen(writer))
        {
            _fencedWithTerm.UnionWith(fenced);
        }
    }

    public Task<WriteAck> Append(AppendRequest request) => AppendAsync(request, attemptedBefore: false);

    public Task<WriteAck> AppendAgain(AppendRequest request) => AppendAsync(request, attemptedBefore: true);

    // A refusal (StaleActor) while an earlier attempt may still commit is not one the actor may act on: it would reload a
    // record without that entry and refuse for good.
    private async Task<WriteAck> AppendAsync(AppendRequest request, bool attemptedBefore)
    {
        try
        {
            return await WriteAsync([request.Message.MessageId], attemptedBefore, writer => writer.TryAppendAsync(request),
                ack => ack.Duplicate ? ack with { Duplicate = false } : ack, refusal => refusal.Code == ErrorCode.StaleActor);
        }
        catch (Pr2Exception e) when (e.Code == ErrorCode.ShardRemoved)
        {
            return (await SealedAcksAsync([request], attemptedBefore))[0];
        }
    }

    public async Task<BatchAck> AppendBatch(AppendRequest[] requests, bool attemptedBefore)
    {
        try
        {
            return await AppendBatchAsync(requests, attemptedBefore);
        }
        catch (Pr2Exception e) when (e.Code == ErrorCode.ShardRemoved)
        {
            return new BatchAck(await SealedAcksAsync(requests, attemptedBefore));
        }
    }

    private async Task<BatchAck> AppendBatchAsync(AppendRequest[] requests, bool attemptedBefore)
    {
        var messageIds = requests.Select(r => r.Message.MessageId).ToArray();
        // A batch is judged by the writer alone (no actor asks FindAccepted first): what an abandoned writer may still
        // commit of it is settled before it is judged, or the answer would not be final. As in FindAccepted, the primary
        // is asked first: what it holds is answered from there (a retry after anti-entropy copied the batch gets its ack).
        if (messageIds.Any(_inDoubt.ContainsKey))
        {
            var writer = await GetWriterAsync();
            HashSet<Guid> held;
            try
            {
                held = await JournalStore.HeldAsync(writer.Source, [.. messageIds.Where(_inDoubt.ContainsKey)]);
            }
            catch (NpgsqlException e)
            {
                throw Unavailable(e);
            }

            foreach (var messageId in messageIds)
            {
                if (held.Contains(messageId))
                {
                    _inDoubt.Remove(messageId);
                }
                else if (_inDoubt.TryGetValue(messageId, out var doubt) && !await SettleAsync(doubt.Replica, messageId))
                {
                    throw OutcomeUnknown(messageId);
                }
            }
        }

        try
        {
            return await WriteBatchAsync();
        }
        catch (Pr2Exception e) when (e.Code == ErrorCode.BatchRefused && _unsettled.Count > 0)
        {
            // Judged without what an earlier activation's writer may have left on a replica not gathered yet: gather it and
            // judge again, or say the refusal is not final.
            if (!await SettleOlderWritersAsync(await GetWriterAsync()))
            {
                throw NotFinal($"the batch of {requests.Length} (refused: {e.Message})");
            }

            return await WriteBatchAsync();
        }

        Task<BatchAck> WriteBatchAsync() => WriteAsync(messageIds, attemptedBefore, writer => writer.TryAppendBatchAsync(requests),
            ack => ack.Duplicate ? new BatchAck([.. ack.Acks.Select(a => a with { Duplicate = false })]) : ack,
            refusal => refusal.Code is ErrorCode.BatchRefused);
    }

    // Fences and gathers into the primary the replicas an earlier writer may have committed to unseen (_unsettled):
    // after that, what the primary lacks was never written. False while one of them does not answer, or when the writer
    // changed meanwhile (a reentrant call failed it over: what was gathered went to a replica no longer the primary).
    private async Task<bool> SettleOlderWritersAsync(JournalWriter writer)
    {
        if (_unsettled.Count == 0)
        {
            return true;
        }

        var primary = PrimaryOf(writer);
        var toFence = _unsettled.Except(_fencedWithTerm).ToList();
        var fenced = await WriterTakeover.FenceAsync(Set, toFence, writer.Epoch, ProbeTimeout);
        if (!IsOpen(writer))
        {
            return false;
        }

        _fencedWithTerm.UnionWith(fenced);
        // One the timer fenced meanwhile (FenceReturnedAsync) is fenced with this term all the same.
        foreach (var index in toFence.Except(fenced).Except(_fencedWithTerm).ToList())
        {
            if (await AnswersAsync(Set.Replicas[index]))
            {
                // It answers but could not be fenced with this writer's term: another writer holds that term or a newer one
                // there. A takeover with a term above every epoch read settles it; until then no refusal is final.
                if (IsOpen(writer))
                {
                    Abandon(writer);
                }

                return false;
            }
        }

        var gathered = await WriterTakeover.GatherAsync(Set, primary, [.. _unsettled.Intersect(_fencedWithTerm)], options.Value.CallTimeout / 2,
            (other, e) => Log.GatherFailed(logger, ShardCode, other, primary, e.Message));
        if (!IsOpen(writer))
        {
            return false;
        }

        _unsettled.ExceptWith(gathered);
        return _unsettled.Count == 0;
    }

    private bool IsOpen(JournalWriter writer) => _opening is { IsCompletedSuccessfully: true } opening && ReferenceEquals(opening.Result, writer);

    private Pr2Exception NotFinal(string what) => new(ErrorCode.ShardUnavailable,
        $"shard {ShardCode}: replica {string.Join(", ", _unsettled.Order())} has not been gathered since this writer took over and may hold {what} " +
        "from an earlier attempt, so a refusal would not be final yet; retry with the same MessageId");

    // Sends a write to the writer, failing over while the budget lasts. ownAck turns a Duplicate answer into this call's
    // own when an earlier attempt of the call may have written it; a refusal notFinal says is not final while that is so.
    private async Task<T> WriteAsync<T>(Guid[] messageIds, bool attemptedBefore, Func<JournalWriter, Task<T>?> send, Func<T, T> ownAck, Func<Pr2Exception, bool> notFinal)
    {
        var deadline = DateTime.UtcNow + FailOverBudget;
        // Whether an earlier attempt of this call may have committed: then the entry found is this call's own.
        var maybeWritten = attemptedBefore;

        while (true)
        {
            JournalWriter writer;
            try
            {
                // A writer opening (a fail-over, a planned move, an admission or removal waiting on shard 0) is waited for
                // within this call's budget only: past it, nothing of this attempt was queued.
                var left = deadline - DateTime.UtcNow;
                writer = await GetWriterAsync().WaitAsync(left > TimeSpan.Zero ? left : TimeSpan.Zero);
            }
            catch (TimeoutException)
            {
                throw maybeWritten ? OutcomeUnknown(messageIds[0]) : new Pr2Exception(ErrorCode.ShardUnavailable,
                    $"shard {ShardCode}: its writer is still opening (failing over, or switching for a move, an admission or a removal); retry with the same MessageId");
            }
            catch (Pr2Exception e) when (maybeWritten && e.Code != ErrorCode.ShardRemoved)
            {
                throw OutcomeUnknown(messageIds[0]);
            }

            try
            {
                if (send(writer) is not { } pending)
                {
                    // Not queued, by a writer closed for a move or given up since: nothing of it was written. The next
                    // writer takes it (one that is still this grain's but takes nothing is fenced: its refusal says so).
                    if (!IsOpen(writer) && DateTime.UtcNow < deadline)
                    {
                        continue;
                    }

                    throw writer.Closed();
                }

                if (await StalledAsync(writer, pending, deadline))
                {
                    // The primary stopped answering (a paused or partitioned server): fail over. If the stalled
                    // commit completes later, its entries reach the others by anti-entropy and the retry below
                    // is absorbed by MessageId.
                    Abandon(writer);
                    if (pending.IsCompletedSuccessfully)
                    {
                        // Committed (under the ack policy) while the probe waited: its answer is this attempt's. What strong
                        // reads must see is read again: the writer moved it on before it answered.
                        Acknowledge(writer.ReplicaId, writer.CommittedOriginPosition);
                        var committed = await pending;
                        return maybeWritten ? ownAck(committed) : committed;
                    }

                    maybeWritten |= MaybeWritten(messageIds) || messageIds.Any(writer.FailedAfterCommit);
                    continue;
                }

                var ack = await pending;
                return maybeWritten ? ownAck(ack) : ack;
            }
            catch (Pr2Exception e) when (e.Code == ErrorCode.WriterFenced && IsOpen(writer))
            {
                localWriters.Withdraw(writer);
                DeactivateOnIdle();
                if (maybeWritten)
                {
                    throw OutcomeUnknown(messageIds[0]);
                }

                throw;
            }
            catch (Pr2Exception e) when (e.Code is ErrorCode.ShardUnavailable or ErrorCode.WriterFenced && (writer.IsBroken || !IsOpen(writer)))
            {
                // Broken, given up meanwhile by another call (what it still held was never sent), fenced by this grain's
                // own next writer, or closed for a planned move (it commits what it holds; it is not given up): the next
                // writer takes this attempt. The writer's own words ("nothing was written") are about this attempt alone;
                // one it committed but failed all the same (the ack policy refused it) is this call's from then on.
                if (writer.IsBroken || writer.IsAbandoned)
                {
                    GiveUp(writer);
                }

                maybeWritten |= MaybeWritten(messageIds) || messageIds.Any(writer.FailedAfterCommit);
                if (DateTime.UtcNow >= deadline)
                {
                    throw maybeWritten ? OutcomeUnknown(messageIds[0]) : e;
                }

                if (writer.IsBroken)
                {
                    // The primary is gone: the next GetWriterAsync chooses again (once for all waiting appends).
                    localWriters.Withdraw(writer);
                    if (ReferenceEquals(_opening?.IsCompletedSuccessfully == true ? _opening.Result : null, writer))
                    {
                        _opening = null;
                    }
                }

                await Task.Delay(50);
            }
            catch (Pr2Exception e) when (maybeWritten && (notFinal(e) || e.Code == ErrorCode.ShardUnavailable))
            {
                throw OutcomeUnknown(messageIds[0]);
            }
        }
    }

    // Whether an attempt of these messages may have committed on a writer given up: in doubt, or past what is recorded.
    private bool MaybeWritten(Guid[] messageIds) => _doubtsOverflowed || messageIds.Any(_inDoubt.ContainsKey);

    public async Task<WriteAck?> FindAccepted(Guid messageId, byte[] contentHash, ActorRef actor, long judgedVersion)
    {
        JournalWriter writer;
        try
        {
            writer = await GetWriterAsync();
        }
        catch (Pr2Exception e) when (e.Code == ErrorCode.ShardRemoved)
        {
            // Sealed: found, its acknowledgement; not found, it never will be written, whatever the actor would refuse it for.
            var found = await FindOnAsync(Set.Replicas[await SealedReplicaAsync()], messageId);
            return found is { } earlier ? EarlierOrConflict(messageId, contentHash, earlier)
                : throw new Pr2Exception(ErrorCode.ShardRemoved, $"shard {ShardCode} was removed: message {messageId} was not written, and the shard takes no more writes");
        }

        // Found on the primary, it was accepted whatever other replicas hold; not found, it may still be on a replica an
        // earlier writer used that was not gathered since this one took over: gather those and look again.
        for (var settled = false; ; settled = true)
        {
            (JournalEntry Entry, byte[] ContentHash)? found;
            try
            {
                found = await JournalStore.FindAsync(writer.Source, ShardCode, messageId);
            }
            catch (NpgsqlException e)
            {
                throw Unavailable(e);
            }

            if (found is { } earlier)
            {
                return await EarlierAckAsync(writer, messageId, contentHash, earlier);
            }

            if (settled || _unsettled.Count == 0)
            {
                break;
            }

            if (!await SettleOlderWritersAsync(writer))
            {
                throw NotFinal($"message {messageId}");
            }
        }

        if (_inDoubt.TryGetValue(messageId, out var doubt) && !await SettleAsync(doubt.Replica, messageId))
        {
            throw OutcomeUnknown(messageId);
        }

        // The gather above (or one by another call, or a fail-over) may have brought the primary entries of the actor its
        // refusal was not judged against: the refusal stands only against the journal as it is now, on this writer's primary.
        if (!IsOpen(writer))
        {
            throw NotFinal($"message {messageId}");
        }

        return await JudgedOnAsync(writer.Source, actor, judgedVersion);
    }

    // Null when the actor's latest version on the replica is the one judged; StaleActor otherwise.
    private async Task<WriteAck?> JudgedOnAsync(NpgsqlDataSource replica, ActorRef actor, long judgedVersion)
    {
        long latest;
        try
        {
            using var timeout = new CancellationTokenSource(ProbeTimeout * 2);
            (latest, _) = await JournalStore.LatestVersionOnPrimaryAsync(replica, actor, timeout.Token).WaitAsync(timeout.Token);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
        {
            throw Unavailable(e);
        }

        return latest == judgedVersion ? null : throw new Pr2Exception(ErrorCode.StaleActor,
            $"{actor} is at version {latest} on the primary, not {judgedVersion} as judged (entries of it arrived from another replica); judge again");
    }

    private async Task<WriteAck> EarlierAckAsync(JournalWriter writer, Guid messageId, byte[] contentHash, (JournalEntry Entry, byte[] ContentHash) earlier)
    {
        EarlierOrConflict(messageId, contentHash, earlier);

        // Committed on the primary is not yet acknowledged under Quorum or All: the same gate as a commit, the gate of
        // the writer on the replica it was found on (a reentrant call may have failed the writer over meanwhile).
        if (!IsOpen(writer))
        {
            throw NotFinal($"message {messageId}");
        }

        if (_gate is { } gate)
        {
            try
            {
                await gate.EnsureAsync();
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
            {
                throw Unavailable(e);
            }
        }

        return JournalStore.ToAck(earlier.Entry, duplicate: true);
    }

    // The first acknowledgement of a message found in the journal, or IdempotencyConflict when its content differs.
    private static WriteAck EarlierOrConflict(Guid messageId, byte[] contentHash, (JournalEntry Entry, byte[] ContentHash) earlier) =>
        earlier.ContentHash.AsSpan().SequenceEqual(contentHash) ? JournalStore.ToAck(earlier.Entry, duplicate: true)
            : throw new Pr2Exception(ErrorCode.IdempotencyConflict,
                $"MessageId {messageId} was already used for a different message (to {earlier.Entry.Actor}); use a new MessageId");

    private async Task<(JournalEntry Entry, byte[] ContentHash)?> FindOnAsync(NpgsqlDataSource replica, Guid messageId)
    {
        try
        {
            using var timeout = new CancellationTokenSource(ProbeTimeout * 2);
            return await JournalStore.FindAsync(replica, ShardCode, messageId, timeout.Token).WaitAsync(timeout.Token);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
        {
            throw Unavailable(e);
        }
    }

    // A retired shard's answer to a write: the journal is final once sealed, so a message found there (an earlier attempt,
    // acknowledged or not) gets its acknowledgement, and one not found was never written and never will be: ShardRemoved.
    // An atomic batch is wholly there or not at all.
    private async Task<WriteAck[]> SealedAcksAsync(AppendRequest[] requests, bool attemptedBefore)
    {
        var replica = Set.Replicas[await SealedReplicaAsync()];
        var acks = new WriteAck?[requests.Length];
        for (var i = 0; i < requests.Length; i++)
        {
            var id = requests[i].Message.MessageId;
            // An earlier attempt of this very call (or one in doubt here) is this call's own, not an earlier call's.
            acks[i] = await FindOnAsync(replica, id) is { } earlier
                ? EarlierOrConflict(id, requests[i].ContentHash, earlier) with { Duplicate = !attemptedBefore && !MaybeWritten([id]) }
                : null;
        }

        if (acks.All(a => a is null))
        {
            throw new Pr2Exception(ErrorCode.ShardRemoved, requests.Length == 1
                ? $"shard {ShardCode} was removed: message {requests[0].Message.MessageId} was not written, and the shard takes no more writes"
                : $"shard {ShardCode} was removed: the batch of {requests.Length} was not written, and the shard takes no more writes");
        }

        var found = Array.FindIndex(acks, a => a is not null);
        return acks.All(a => a is not null) ? [.. acks.Select(a => a!)] : throw new Pr2Exception(ErrorCode.IdempotencyConflict,
            $"part of this batch (MessageId {requests[found].Message.MessageId}) was accepted in another batch or alone; use new MessageIds");
    }

    // A replica of the retired shard that is sealed (retired, made equal to the others, then marked: primary_term = epoch),
    // the last primary first. Until one answers, whether an earlier attempt was written is not known: not final.
    private async Task<int> SealedReplicaAsync()
    {
        foreach (var index in Set.Live.OrderBy(i => i == Set.PrimaryIndex ? 0 : 1))
        {
            try
            {
                using var timeout = new CancellationTokenSource(ProbeTimeout);
                await using var command = Set.Replicas[index].CreateCommand("select retired_at is not null and primary_term = epoch from pr2_writer_head");
                if (await command.ExecuteScalarAsync(timeout.Token).WaitAsync(timeout.Token) is true)
                {
                    return index;
                }
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
            {
                // Not answering: another may.
            }
        }

        throw new Pr2Exception(ErrorCode.ShardUnavailable,
            $"shard {ShardCode} is being removed and its replicas are not sealed yet, so whether an earlier attempt was written is not known yet; retry with the same MessageId");
    }

    public Task<IReadOnlyDictionary<int, long>> Seal() => OneAtATimeAsync(SealAsync);

    private async Task<IReadOnlyDictionary<int, long>> SealAsync()
    {
        await topology.RefreshShardAsync(ShardCode);
        if (await DirectoryGrain.RemovalOfAsync(GrainFactory, ShardCode) is null)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, $"shard {ShardCode} is not being removed: it is sealed only by its removal");
        }

        // From here no writer opens in this activation (calls interleaved while the seal awaits get "being sealed").
        _retired = Retired();
        // What the writer has queued commits (and is acknowledged) first; then it takes nothing more. A writer that cannot
        // drain is given up: its commits in flight land before the retire below or fail (the retire takes the head's lock).
        if (_opening is { IsCompletedSuccessfully: true } opening)
        {
            localWriters.Withdraw(opening.Result);
            await TryDrainAsync(opening.Result);
            _opening = null;
        }

        var set = Set;
        var unreached = new List<int>();
        foreach (var index in set.Live)
        {
            try
            {
                using var timeout = new CancellationTokenSource(options.Value.CallTimeout / 2);
                await JournalWriter.RetireAsync(set.Replicas[index], timeout.Token).WaitAsync(timeout.Token);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
            {
                unreached.Add(index);
            }
        }

        if (unreached.Count > 0)
        {
            // Perhaps only this silo cannot reach it (cut off from its server): the next try may be placed on another.
            DeactivateOnIdle();
            throw new Pr2Exception(ErrorCode.ShardUnavailable,
                $"shard {ShardCode} is being sealed for its removal: replica {string.Join(", ", unreached)} does not answer, and the seal waits for it (it may hold acknowledged entries no other has); bring it back and run again");
        }

        // Retired everywhere, nothing commits any more: each replica takes what the others hold, until all are equal.
        using var copying = new CancellationTokenSource(options.Value.CallTimeout * 6);
        try
        {
            while (true)
            {
                var vectors = new Dictionary<int, VersionVector>();
                foreach (var index in set.Live)
                {
                    vectors[index] = await VersionVector.ReadAsync(set.Replicas[index], copying.Token).WaitAsync(copying.Token);
                }

                var lacking = set.Live.SelectMany(to => set.Live.Where(from => from != to && vectors[to].Behind(vectors[from]) > 0).Select(from => (from, to))).ToList();
                if (lacking.Count == 0)
                {
                    break;
                }

                foreach (var (from, to) in lacking)
                {
                    await ReplicaSync.PushAllAsync(set.Replicas[from], set.Replicas[to], cancellationToken: copying.Token).WaitAsync(copying.Token);
                }
            }

            // Equal and final: each is marked sealed, from which any of them answers for the journal; then their heads.
            var heads = new Dictionary<int, long>();
            foreach (var index in set.Live)
            {
                await using var command = set.Replicas[index].CreateCommand(
                    "update pr2_writer_head set primary_term = epoch, updated_at = now() where retired_at is not null returning position");
                heads[index] = await command.ExecuteScalarAsync(copying.Token).WaitAsync(copying.Token) is long head ? head
                    : throw new Pr2Exception(ErrorCode.ShardUnavailable, $"shard {ShardCode}: replica {index} is no longer retired (restored meanwhile?); run the seal again");
            }

            Log.ShardSealed(logger, ShardCode, string.Join(", ", heads.Select(h => $"replica {h.Key} at {h.Value}")));
            return heads;
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException or ReplicaNotReadyException)
        {
            DeactivateOnIdle(); // as above: another silo may reach them all
            throw new Pr2Exception(ErrorCode.ShardUnavailable,
                $"shard {ShardCode} is being sealed for its removal: its retired replicas could not be made equal ({DatabaseFailure.Describe(e)}); run again");
        }
    }

    // Stops the writer sending anything more and remembers what it may still commit on its replica.
    private void GiveUp(JournalWriter writer)
    {
        // What it acknowledged may be on its replica alone (Primary policy): strong reads wait until the primary has it.
        Acknowledge(writer.ReplicaId, writer.CommittedOriginPosition);
        var replica = PrimaryOf(writer);
        foreach (var messageId in writer.Abandon())
        {
            if (_inDoubt.Count < MaxInDoubt || _inDoubt.ContainsKey(messageId))
            {
                _inDoubt[messageId] = (replica, writer.Epoch);
            }
            else
            {
                _doubtsOverflowed = true;
            }
        }
    }

    // Whether the MessageIds in doubt on the replica are settled: its epoch is moved past theirs (the bump waits for the
    // head's row lock, so a commit in flight there has finished, and one not yet started will find itself fenced; a
    // newer writer's epoch is never touched) and the replica searched. The ones not there never will be and are
    // forgotten; the ones there go on to the primary by anti-entropy. True when messageId is settled as not written.
    private async Task<bool> SettleAsync(int replica, Guid messageId)
    {
        var doubts = _inDoubt.Where(d => d.Value.Replica == replica).ToList();
        var ids = doubts.Select(d => d.Key).ToArray();
        HashSet<Guid> written;
        try
        {
            using var timeout = new CancellationTokenSource(ProbeTimeout * 2);
            written = await SettleOnAsync(Set.Replicas[replica], doubts.Max(d => d.Value.Epoch), ids, timeout.Token).WaitAsync(timeout.Token);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
        {
            return false; // not answering: whatever was in flight there may still commit
        }

        foreach (var (id, doubt) in doubts.Where(d => !written.Contains(d.Key)))
        {
            // Only the doubt this settled: a writer given up meanwhile (by a call interleaved at the await) may have
            // put the id in doubt again, on another replica or epoch.
            if (_inDoubt.TryGetValue(id, out var now) && now == doubt)
            {
                _inDoubt.Remove(id);
            }
        }

        if (written.Count > 0 && Set.Replicas.Count > 1)
        {
            _ = GrainFactory.GetGrain<IAntiEntropyGrain>(ShardCode).Wake();
        }

        return !written.Contains(messageId);
    }

    private static async Task<HashSet<Guid>> SettleOnAsync(NpgsqlDataSource replica, long epoch, Guid[] ids, CancellationToken cancellationToken)
    {
        await using var batch = new NpgsqlBatch
        {
            BatchCommands =
            {
                new("update pr2_writer_head set epoch = epoch + 1, updated_at = now() where epoch <= $1") { Parameters = { new() { Value = epoch } } },
                new("select message_id from pr2_journal where message_id = any($1)") { Parameters = { JournalStore.Array(ids, NpgsqlTypes.NpgsqlDbType.Uuid) } },
            },
        };
        await using var connection = await replica.OpenConnectionAsync(cancellationToken);
        batch.Connection = connection;
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
        await reader.NextResultAsync(cancellationToken);
        var written = new HashSet<Guid>();
        while (await reader.ReadAsync(cancellationToken))
        {
            written.Add(reader.GetGuid(0));
        }

        return written;
    }

    private Pr2Exception OutcomeUnknown(Guid messageId) => new(ErrorCode.ShardUnavailable,
        $"an earlier attempt of message {messageId} may still commit on a replica of shard {ShardCode} that stopped answering; " +
        "the outcome is unknown, retry with the same MessageId");

    public async Task<ShardHead> GetHead()
    {
        try
        {
            return await JournalStore.ReadHeadAsync((await GetWriterAsync()).Source, ShardCode);
        }
        catch (Pr2Exception e) when (e.Code == ErrorCode.ShardRemoved)
        {
            return await JournalStore.ReadHeadAsync(Set.Replicas[await SealedReplicaAsync()], ShardCode);
        }
        catch (NpgsqlException e)
        {
            throw Unavailable(e);
        }
    }

    public async Task<int> GetStrongPrimary()
    {
        JournalWriter writer;
        try
        {
            writer = await GetWriterAsync();
        }
        catch (Pr2Exception e) when (e.Code == ErrorCode.ShardRemoved)
        {
            return await SealedReplicaAsync(); // sealed, every replica holds all the shard ever acknowledged
        }

        var primary = PrimaryOf(writer);
        foreach (var replica in _unheard?.Where(Set.IsMember).ToArray() ?? [])
        {
            await TryReadVectorAsync(replica);
        }

        // A joining replica never counted toward an acknowledgement: it cannot be the only one holding one.
        if (_unheard?.Where(Set.IsMember).Order().ToList() is { Count: > 0 } unheard && unheard.Count >= Set.RequiredCopies)
        {
            throw new Pr2Exception(ErrorCode.ShardUnavailable,
                $"a strong read of shard {ShardCode} cannot be served: replica {string.Join(", ", unheard)} has not answered since the writer took over " +
                $"and may hold acknowledged entries no other replica has (an acknowledgement takes {Set.RequiredCopies} of {Set.Members.Count} replicas); retry");
        }

        VersionVector held;
        try
        {
            using var timeout = new CancellationTokenSource(ProbeTimeout);
            held = await VersionVector.ReadAsync(writer.Source, timeout.Token).WaitAsync(timeout.Token);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
        {
            throw Unavailable(e);
        }

        var lacking = _acknowledged.Count(a => held[a.Key] < a.Value);
        if (lacking == 0 && IsOpen(writer))
        {
            return primary;
        }

        if (!IsOpen(writer))
        {
            throw new Pr2Exception(ErrorCode.ShardUnavailable, $"the primary of shard {ShardCode} changed during a strong read; retry");
        }

        if (Set.Replicas.Count > 1)
        {
            _ = GrainFactory.GetGrain<IAntiEntropyGrain>(ShardCode).Wake();
        }

        throw new Pr2Exception(ErrorCode.ShardUnavailable,
            $"a strong read of shard {ShardCode} cannot be served yet: the primary (replica {primary}) lacks acknowledged entries of {lacking} origin(s) that anti-entropy is copying; retry");
    }

    public Task Release(int replica)
    {
        if (_opening is { IsCompletedSuccessfully: true } opened && PrimaryOf(opened.Result) == replica)
        {
            Abandon(opened.Result);
        }

        return Task.CompletedTask;
    }

    public async Task<long> ForgetLost()
    {
        var before = _acknowledged.ToList();
        var vectors = new List<VersionVector>();
        foreach (var replica in Set.Members.Select(i => Set.Replicas[i]))
        {
            try
            {
                using var timeout = new CancellationTokenSource(ProbeTimeout);
                vectors.Add(await VersionVector.ReadAsync(replica, timeout.Token).WaitAsync(timeout.Token));
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
            {
                return -1;
            }
        }

        // What was acknowledged before the vectors were read (a commit after that is not held yet, not lost). A live
        // replica holds all its own entries: its identity is never an origin of lost ones.
        var live = vectors.Select(v => v.ReplicaId).ToHashSet();
        long lost = 0;
        foreach (var (origin, acknowledged) in before.Where(a => !live.Contains(a.Key)))
        {
            var held = vectors.Max(v => v[origin]);
            if (held < acknowledged)
            {
                Log.AcknowledgedLost(logger, ShardCode, acknowledged - held, origin, held);
                lost += acknowledged - held;
                _acknowledged[origin] = Math.Min(_acknowledged.GetValueOrDefault(origin), held);
                _lost[origin] = (held, acknowledged);
            }
        }

        return lost;
    }

    // Reads a replica's version vector into what strong reads must see; false when it does not answer.
    private async Task<(bool Reachable, long Held, long Epoch, long PrimaryTerm)> TryReadVectorAsync(int replica)
    {
        try
        {
            using var timeout = new CancellationTokenSource(ProbeTimeout);
            var (vector, epoch, primaryTerm) = await VersionVector.ReadWithTermsAsync(Set.Replicas[replica], timeout.Token).WaitAsync(timeout.Token);
            foreach (var (origin, position) in vector.Positions)
            {
                Acknowledge(origin, position);
            }

            _unheard?.Remove(replica);
            return (true, vector.Positions.Values.Sum(), epoch, primaryTerm);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
        {
            return (false, -1, -1, -1);
        }
    }

    private void Acknowledge(Guid origin, long position)
    {
        // Up to what was declared lost after a restore, an acknowledgement is no news: it stays lost.
        if (_lost.TryGetValue(origin, out var lost) && position <= lost.Acknowledged)
        {
            position = Math.Min(position, lost.Held);
        }

        _acknowledged[origin] = Math.Max(_acknowledged.GetValueOrDefault(origin), position);
    }

    public async Task<int> GetPrimary()
    {
        try
        {
            return PrimaryOf(await GetWriterAsync());
        }
        catch (Pr2Exception e) when (e.Code == ErrorCode.ShardRemoved)
        {
            return await SealedReplicaAsync(); // reads go on where the sealed journal is
        }
    }

    public async Task<int> ReportUnreachable(int primary)
    {
        JournalWriter writer;
        try
        {
            writer = await GetWriterAsync();
        }
        catch (Pr2Exception e) when (e.Code == ErrorCode.ShardRemoved)
        {
            return await SealedReplicaAsync();
        }

        if (primary == PrimaryOf(writer) && !await AnswersAsync(Set.Replicas[primary]))
        {
            Abandon(writer);
            writer = await GetWriterAsync();
        }

        return PrimaryOf(writer);
    }

    // The replica the writer appends to. Not the silo-wide set's index: a caller on this silo may write back an answer
    // it got before a move (CurrentPrimary), and this grain must never repeat that.
    private int PrimaryOf(JournalWriter writer) => Set.IndexOf(writer.Source);

    public async Task<int> MovePrimary(int replica)
    {
        if (replica < 0 || replica >= Set.Replicas.Count)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, $"shard {ShardCode} has replicas 0 to {Set.Replicas.Count - 1}; there is no replica {replica}");
        }

        if (Set.IsRemoved(replica))
        {
            throw new Pr2Exception(ErrorCode.BadMessage, $"shard {ShardCode}: replica {replica} was removed; it cannot become the primary");
        }

        if (!Set.IsMember(replica))
        {
            throw new Pr2Exception(ErrorCode.ShardUnavailable,
                $"shard {ShardCode}: replica {replica} is still joining (catching up); it can become the primary once it serves; retry later");
        }

        return await OneAtATimeAsync(async () =>
        {
            await RefuseIfBeingRemovedAsync("its primary no longer moves");
            return await MoveAsync(replica);
        });
    }

    // A shard being removed keeps the replicas and primary its seal found. Asked inside OneAtATimeAsync, where the seal
    // runs too: a change either finishes before the seal starts or, starting after it, finds the removal recorded.
    // A directory that does not answer (shard 0 down) does not stop the change: the seal's retire marks are what guard the
    // removal, and a move or membership change that raced it ends where the seal finds it.
    private async Task RefuseIfBeingRemovedAsync(string what)
    {
        if (_retired is not null)
        {
            throw new Pr2Exception(ErrorCode.ShardRemoved, $"shard {ShardCode} is being removed; {what}");
        }

        try
        {
            await DirectoryGrain.RefuseIfBeingRemovedAsync(GrainFactory, ShardCode, what);
        }
        catch (Exception e) when (e is Pr2Exception { IsRetriable: true } or TimeoutException or OrleansException)
        {
            Log.RemovalNotChecked(logger, ShardCode, e.Message);
        }
    }

    // Moves and admissions one at a time: a second one waits for the first, then starts from wherever that left the writer.
    private async Task<T> OneAtATimeAsync<T>(Func<Task<T>> change)
    {
        while (_moving is { } moving)
        {
            await moving.ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Current);
        }

        var move = change();
        _moving = move;
        try
        {
            return await move;
        }
        finally
        {
            if (ReferenceEquals(_moving, move))
            {
                _moving = null;
            }
        }
    }

    private async Task<int> MoveAsync(int replica)
    {
        var writer = await GetWriterAsync();
        var from = PrimaryOf(writer);
        if (from == replica)
        {
            return replica;
        }

        if (!writer.IsOpen)
        {
            throw NotMoved(replica, from, "the writer is not open (failing over, or fenced by another writer)");
        }

        // Writes go on while the target copies what it lacks, so that the switch waits only for the last few entries.
        await CatchUpAsync(writer, replica, why => NotMoved(replica, from, why));
        if (!IsOpen(writer))
        {
            // The writer failed over while the target copied: the primary is where that put it.
            var now = PrimaryOf(await GetWriterAsync());
            return now == replica ? replica : throw NotMoved(replica, now, "the writer failed over meanwhile");
        }

        // Appends that reach the grain from now on wait for the switch; the old writer commits what it has queued first.
        localWriters.Withdraw(writer);
        var switching = SwitchAsync(writer, from, replica);
        _opening = switching;
        var opened = await switching;
        // A fall-back that happened to open on the target is a fail-over, not this move: it may lack the old primary's entries.
        return PrimaryOf(opened) == replica && _moveFailure is null ? replica
            : throw NotMoved(replica, PrimaryOf(opened), $"{_moveFailure ?? "it could not take over"}, and the writer opened where a fail-over puts it");
    }

    // Pushes from the primary to the target until the target lacks less than one push (by their version vectors: a push
    // that gives way to anti-entropy moving the same entries says nothing), or refuses the move when the call bound ends.
    private async Task CatchUpAsync(JournalWriter writer, int replica, Func<string, Pr2Exception> refuse)
    {
        long behind = -1;
        try
        {
            using var copying = new CancellationTokenSource(options.Value.CallTimeout);
            while (true)
            {
                var source = await VersionVector.ReadAsync(writer.Source, copying.Token).WaitAsync(copying.Token);
                behind = (await VersionVector.ReadAsync(Set.Replicas[replica], copying.Token).WaitAsync(copying.Token)).Behind(source);
                if (behind < CatchUpBatch)
                {
                    return;
                }

                await ReplicaSync.PushAsync(writer.Source, Set.Replicas[replica], CatchUpBatch, copying.Token).WaitAsync(copying.Token);
            }
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException or ReplicaNotReadyException)
        {
            throw refuse(behind >= 0
                ? $"it is still {behind} entries behind the primary after {options.Value.CallTimeoutSeconds:0.#} s (anti-entropy goes on copying)"
                : $"it could not take the primary's entries ({DatabaseFailure.Describe(e)})");
        }
    }

    public async Task<bool> AdmitReplica(int replica)
    {
        // This silo's view of the shard as the directory records it now (the replica was added on another silo, perhaps).
        await topology.RefreshShardAsync(ShardCode);
        if (replica < 0 || replica >= Set.Replicas.Count)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, $"shard {ShardCode} has replicas 0 to {Set.Replicas.Count - 1}; there is no replica {replica}");
        }

        if (Set.IsRemoved(replica))
        {
            throw new Pr2Exception(ErrorCode.BadMessage, $"shard {ShardCode}: replica {replica} was removed; add a new replica instead");
        }

        return Set.IsMember(replica) || await OneAtATimeAsync(async () =>
        {
            await RefuseIfBeingRemovedAsync("its replicas are no longer admitted");
            return await AdmitAsync(replica);
        });
    }

    // Like a planned move onto the same primary: the replica catches up while writes go on; then the writer drains, the
    // replica takes everything the primary holds (so every acknowledged entry is on one more replica than the old ack
    // policy needed, which meets the new one: see docs/architecture.md), the directory records it a member, and a new
    // writer opens counting it.
    private async Task<bool> AdmitAsync(int replica)
    {
        var writer = await GetWriterAsync();
        if (Set.IsMember(replica))
        {
            return true;
        }

        if (Set.IsRemoved(replica))
        {
            throw new Pr2Exception(ErrorCode.BadMessage, $"shard {ShardCode}: replica {replica} was removed; add a new replica instead");
        }

        var primary = PrimaryOf(writer);
        if (!writer.IsOpen)
        {
            throw NotAdmitted(replica, "the writer is not open (failing over, or fenced by another writer)");
        }

        await CatchUpAsync(writer, replica, why => NotAdmitted(replica, why));
        if (!IsOpen(writer))
        {
            throw NotAdmitted(replica, "the writer failed over meanwhile");
        }

        localWriters.Withdraw(writer);
        var switching = AdmitSwitchAsync(writer, primary, replica);
        _opening = switching;
        await switching;
        return Set.IsMember(replica) ? true : throw NotAdmitted(replica, _membershipFailure ?? "the directory did not record it");
    }

    // Nothing is acknowledged from the drain until the next writer opens: what the primary holds then is all there is.
    private Task<JournalWriter> AdmitSwitchAsync(JournalWriter old, int primary, int replica) => MembershipSwitchAsync(old, primary, async () =>
    {
        using var copying = new CancellationTokenSource(options.Value.CallTimeout);
        await ReplicaSync.CopyAllAsync(old.Source, Set.Replicas[replica], copying.Token).WaitAsync(copying.Token);
        // From the record on, every writer must count the replica: until this silo has read it back (and a record
        // whose outcome is unknown is known), none opens here.
        _membershipInDoubt = true;
        await RecordMembershipAsync(replica, remove: false);
    });

    // A change of membership with writes waiting, as a planned move onto the same primary: the writer drains (a fenced one
    // changes nothing), the change runs (its failure kept for the caller), and a new writer opens on the primary.
    private async Task<JournalWriter> MembershipSwitchAsync(JournalWriter old, int primary, Func<Task> change)
    {
        _membershipFailure = null;
        if (!await TryDrainAsync(old))
        {
            _membershipFailure = "the writer could not drain in time";
            return await OpenAsync();
        }

        if (old.IsFenced)
        {
            // Another writer took the shard over meanwhile: this activation changes nothing, never reopens, and goes away.
            // The fenced writer stays this activation's: appends to it are refused as fenced, as after any fence.
            _membershipFailure = "another writer took the shard over";
            DeactivateOnIdle();
            return old;
        }

        try
        {
            await change();
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException or ReplicaNotReadyException or Pr2Exception or OrleansException)
        {
            _membershipFailure = e is Pr2Exception or OrleansException ? e.Message : $"a replica did not take the primary's entries ({DatabaseFailure.Describe(e)})";
        }

        _move = (primary, primary);
        try
        {
            return await OpenAsync();
        }
        finally
        {
            _move = null;
        }
    }

    // Before a writer opens: a pending admission's record completed (its data was copied while nothing was acknowledged,
    // and no writer has opened since), then this silo's set as the directory records it. Either failing refuses the open.
    private async Task FollowDirectoryAsync()
    {
        try
        {
            if (_membershipRecord is { } pending)
            {
                await RecordMembershipAsync(pending.Replica, pending.Remove);
            }

            // A removal that began (perhaps sealed by another activation, some replicas not retired yet): no writer opens.
            try
            {
                await RefuseIfBeingRemovedAsync("it takes no more writes");
            }
            catch (Pr2Exception e) when (e.Code == ErrorCode.ShardRemoved)
            {
                throw _retired = Retired();
            }

            if (await topology.MembersProblemAsync(ShardCode).WaitAsync(options.Value.CallTimeout) is { } problem)
            {
                // This silo cannot count the shard's members (a key it lacks): the grain goes, to be placed anew.
                DeactivateOnIdle();
                throw new Pr2Exception(ErrorCode.ShardUnavailable, $"shard {ShardCode}: {problem}; set it on every silo; retry with the same MessageId");
            }
        }
        catch (Exception e) when (e is TimeoutException or OrleansException or NpgsqlException || e is Pr2Exception { Code: not (ErrorCode.ShardUnavailable or ErrorCode.ShardRemoved) })
        {
            throw new Pr2Exception(ErrorCode.ShardUnavailable,
                $"shard {ShardCode}: a new writer reads the shard's replicas in the directory (shard 0) before it opens, and could not ({e.Message}); retry with the same MessageId");
        }
    }

    // Journals the replica as a member (or as removed) in the shard's directory record, expecting the version read. The
    // change is sent again as it is while its outcome is unknown (a retry of a committed one answers its first
    // acknowledgement); a version mismatch means it was not committed: read the record again.
    private async Task RecordMembershipAsync(int replica, bool remove)
    {
        var actorId = $"shard/{ShardCode}";
        var actor = GrainFactory.GetGrain<IActorGrain>(0, actorId, null);
        var deadline = DateTime.UtcNow + (2 * options.Value.CallTimeout);
        while (true)
        {
            if (_membershipRecord is not { } pending || pending.Replica != replica || pending.Remove != remove)
            {
                var current = await actor.GetRecord().WaitAsync(options.Value.CallTimeout);
                var entry = current.Status == RecordStatus.Live ? DirectoryGrain.TryToShardEntry(current) : null;
                var joining = entry?.Joining ?? [];
                var removed = entry?.Removed ?? [];
                if (entry is null || (remove ? removed.Contains(replica) : !joining.Contains(replica)))
                {
                    _membershipRecord = null;
                    return;
                }

                if (entry.Removal is { } removal)
                {
                    // Begun since this change was checked: the members the seal finds are the ones it keeps.
                    _membershipRecord = null;
                    throw DirectoryGrain.BeingRemoved(ShardCode, removal, "its replicas are no longer admitted or removed");
                }

                // Removed, a replica is no longer joining either.
                var patch = new System.Text.Json.Nodes.JsonObject
                {
                    ["joining"] = IndexArray(joining.Where(j => j != replica)),
                };
                if (remove)
                {
                    patch["removed"] = IndexArray(removed.Append(replica).Order());
                }

                pending = (replica, remove, new Message(MessageIds.New(), "journal-writer", new ActorRef(0, actorId), MessageKind.Modify, patch.ToJsonString(), current.Version));
                _membershipRecord = pending;
            }

            try
            {
                await actor.Send(pending.Change).WaitAsync(options.Value.CallTimeout);
                _membershipRecord = null;
                if (remove)
                {
                    Log.ReplicaRemoved(logger, ShardCode, replica);
                }
                else
                {
                    Log.ReplicaAdmitted(logger, ShardCode, replica);
                }

                return;
            }
            catch (Pr2Exception e) when (e.Code == ErrorCode.VersionMismatch)
            {
                // Not committed (a committed one would have been answered as such): changed meanwhile, read it again.
                _membershipRecord = null;
            }
            catch (Exception e) when ((e is Pr2Exception { IsRetriable: true } or TimeoutException or OrleansException) && DateTime.UtcNow < deadline)
            {
                // Outcome unknown: the same change again.
                await Task.Delay(200);
            }
        }
    }

    // A list of replica indexes as the directory record keeps it (absent when empty).
    private static System.Text.Json.Nodes.JsonArray? IndexArray(IEnumerable<int> indexes)
    {
        var array = new System.Text.Json.Nodes.JsonArray([.. indexes.Select(i => (System.Text.Json.Nodes.JsonNode)i)]);
        return array.Count == 0 ? null : array;
    }

    public async Task<bool> RemoveReplica(int replica)
    {
        // As far as this silo can follow (a joining replica whose key it lacks must still be removable).
        try
        {
            await topology.MembersProblemAsync(ShardCode);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException or ArgumentException)
        {
            throw new Pr2Exception(ErrorCode.ShardUnavailable, $"shard {ShardCode}: the directory's replicas could not be read ({e.Message}); retry");
        }
        if (replica < 0 || replica >= Set.Replicas.Count)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, $"shard {ShardCode} has replicas 0 to {Set.Replicas.Count - 1}; there is no replica {replica}");
        }

        if (ShardCode == 0)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, "shard 0's replicas are configured (Pr2:Topology:Shards:0); they are not removed at runtime");
        }

        return Set.IsRemoved(replica) || await OneAtATimeAsync(async () =>
        {
            await RefuseIfBeingRemovedAsync("its replicas are no longer removed one by one");
            return await RemoveAsync(replica);
        });
    }

    // A joining replica was never counted: it is only recorded removed. A member is removed like a planned move onto the
    // same primary: the writer drains, every entry the primary holds is copied to as many of the other members as the
    // policy needs without it (so a later takeover over the members left meets every acknowledged entry), the directory
    // records it removed, and a new writer opens without it.
    private async Task<bool> RemoveAsync(int replica)
    {
        if (Set.IsRemoved(replica))
        {
            return true;
        }

        if (Set.Joining.Contains(replica))
        {
            // A change of another replica whose outcome is unknown is settled first (the next writer must not skip it).
            if (_membershipRecord is { } pending && pending.Replica != replica)
            {
                await RecordMembershipAsync(pending.Replica, pending.Remove);
            }

            var doubted = _membershipInDoubt;
            _membershipInDoubt = true;
            await RecordMembershipAsync(replica, remove: true);
            await topology.MembersProblemAsync(ShardCode);
            _membershipInDoubt = doubted;
            return Set.IsRemoved(replica);
        }

        var remaining = Set.Members.Where(i => i != replica).ToList();
        if (remaining.Count == 0)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, $"replica {replica} is shard {ShardCode}'s last member; a shard keeps at least one");
        }

        var writer = await GetWriterAsync();
        var primary = PrimaryOf(writer);
        if (replica == primary)
        {
            throw new Pr2Exception(ErrorCode.BadMessage,
                $"replica {replica} is shard {ShardCode}'s primary; move the primary to another replica first (pr2 replicas promote {ShardCode} <replica>)");
        }

        if (!writer.IsOpen)
        {
            throw NotRemoved(replica, "the writer is not open (failing over, or fenced by another writer)");
        }

        // One that does not answer and may hold the only copy of acknowledged entries is refused before writes wait.
        if (MayHoldTheOnlyCopy(replica) && !await AnswersAsync(Set.Replicas[replica]))
        {
            throw NotRemoved(replica, $"it does not answer and may hold acknowledged entries no other replica has (ack policy {Set.AckPolicy}); bring it back (or restore it), then remove it");
        }

        // The members left catch up while writes go on, so that the switch waits only for the last few entries.
        foreach (var member in remaining.Where(i => i != primary))
        {
            await CatchUpAsync(writer, member, why => NotRemoved(replica, $"replica {member}, a member left, {why}"));
        }

        if (!IsOpen(writer))
        {
            throw NotRemoved(replica, "the writer failed over meanwhile");
        }

        localWriters.Withdraw(writer);
        var switching = RemoveSwitchAsync(writer, primary, replica, remaining);
        _opening = switching;
        await switching;
        return Set.IsRemoved(replica) ? true : throw NotRemoved(replica, _membershipFailure ?? "the directory did not record it");
    }

    private Task<JournalWriter> RemoveSwitchAsync(JournalWriter old, int primary, int replica, List<int> remaining) => MembershipSwitchAsync(old, primary, async () =>
    {
        // Fenced first, with a term above this writer's (as a takeover does): nothing of an older writer lands on it
        // after the gather, and it never reads as a primary again. Should the removal not be recorded, it is an
        // ordinary member with an ordinary epoch, which the next writer's term goes above. Then what it holds that
        // the primary lacks comes over (a former primary's entries, acknowledged under the Primary policy on it
        // alone); when it does not answer, only a replica that cannot hold the only copy of an ack may go.
        _lastTerm = Math.Max(_lastTerm, old.Epoch) + 1;
        var fenced = (await WriterTakeover.FenceAsync(Set, [replica], _lastTerm, ProbeTimeout)).Contains(replica);
        var gathered = fenced && (await WriterTakeover.GatherAsync(Set, primary, [replica], options.Value.CallTimeout / 2)).Contains(replica);
        if (!gathered && MayHoldTheOnlyCopy(replica))
        {
            throw new Pr2Exception(ErrorCode.ShardUnavailable,
                $"it does not answer and may hold acknowledged entries no other replica has (ack policy {Set.AckPolicy}); bring it back (or restore it), then remove it");
        }

        // Nothing is acknowledged from here until the next writer opens: the policy over the members left must hold
        // for everything the primary holds now (it holds every acknowledged entry).
        var required = new ShardReplicaSet(ShardCode, [.. remaining.Select(i => Set.Replicas[i])], Set.AckPolicy).RequiredCopies;
        var others = remaining.Where(i => i != primary).Select(i => Set.Replicas[i]).ToList();
        try
        {
            await new ReplicationGate(ShardCode, old.Source, others, required, options.Value.CallTimeout, old.Epoch).EnsureAsync();
        }
        catch (Pr2Exception e) when (e.Code == ErrorCode.ShardUnavailable)
        {
            throw new Pr2Exception(ErrorCode.ShardUnavailable,
                $"the ack policy without it needs {required} of the {remaining.Count} members left to hold every entry, and too few of them took the primary's in time");
        }

        _membershipInDoubt = true;
        await RecordMembershipAsync(replica, remove: true);
    });

    // Under the Primary policy an acknowledged entry may be on one replica alone; under the others, only a replica this
    // writer has not settled since its takeover may hold what it has not gathered.
    private bool MayHoldTheOnlyCopy(int replica) => Set.AckPolicy == AckPolicy.Primary || _unsettled.Contains(replica);

    // A removed replica is never settled, searched or waited for again (also when its removal was recorded by a later open).
    private void ForgetRemoved(ShardReplicaSet set)
    {
        _unsettled.ExceptWith(set.Removed);
        _unheard?.ExceptWith(set.Removed);
        _fencedWithTerm.ExceptWith(set.Removed);
        foreach (var doubt in _inDoubt.Where(d => set.IsRemoved(d.Value.Replica)).Select(d => d.Key).ToList())
        {
            _inDoubt.Remove(doubt);
        }
    }

    private Pr2Exception NotRemoved(int replica, string why) => new(ErrorCode.ShardUnavailable,
        $"shard {ShardCode}: replica {replica} was not removed: {why}; retry (pr2 shards describe says whether it is removed)");

    private Pr2Exception NotAdmitted(int replica, string why) => new(ErrorCode.ShardUnavailable,
        $"shard {ShardCode}: replica {replica} was not admitted yet: {why}; it goes on catching up, retry");

    // Drains the old writer (bounded: a primary that stalls now is given up, as a fail-over would), then opens on the
    // target, which must gather the old primary: that holds everything the old writer acknowledged. If the target cannot
    // take over, the writer opens where a fail-over would put it (the old primary, when it answers).
    private async Task<JournalWriter> SwitchAsync(JournalWriter old, int from, int to)
    {
        _moveFailure = null;
        await TryDrainAsync(old);
        _move = (from, to);
        try
        {
            return await OpenAsync();
        }
        catch (Exception e) when (e is Pr2Exception or NpgsqlException)
        {
            _moveFailure = e.Message;
        }
        finally
        {
            _move = null;
        }

        return await OpenAsync();
    }

    // Drains the writer before a planned change, bounded: one that stalls is given up, as a fail-over would (false).
    private async Task<bool> TryDrainAsync(JournalWriter old)
    {
        try
        {
            await old.DisposeAsync().AsTask().WaitAsync(FailOverBudget);
            Acknowledge(old.ReplicaId, old.CommittedOriginPosition);
            return true;
        }
        catch (TimeoutException)
        {
            GiveUp(old);
            return false;
        }
    }

    private Pr2Exception NotMoved(int replica, int primary, string why) => new(ErrorCode.ShardUnavailable,
        $"shard {ShardCode}: the primary was not moved to replica {replica}: {why}; the primary is replica {primary}; retry");

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (_opening is not { } opening)
        {
            return;
        }

        try
        {
            // A writer still opening (a move's switch) is waited for, so that it is never left open and published.
            var writer = await opening;
            // Commits whatever is still queued before the activation goes away.
            localWriters.Withdraw(writer);
            await writer.DisposeAsync();
        }
        catch (Exception e) when (e is Pr2Exception or NpgsqlException or TimeoutException)
        {
            // It never opened: nothing to close.
        }
    }

    private Task<JournalWriter> GetWriterAsync()
    {
        if (_retired is { } retired)
        {
            return Task.FromException<JournalWriter>(retired);
        }

        if (_opening is null || _opening.IsFaulted)
        {
            _opening = OpenAsync();
        }

        return _opening;
    }

    private async Task<JournalWriter> OpenAsync()
    {
        if (_membershipInDoubt)
        {
            // A writer counting too few replicas could acknowledge on fewer than a later one meets: it opens only with the
            // membership the directory records (shard 0's own replicas are configured, never added at runtime).
            await FollowDirectoryAsync();
            _membershipInDoubt = false;
        }

        // One membership throughout: the follower may swap the silo's set while this opens.
        var set = Set;
        ForgetRemoved(set);

        // The replica of the writer this one replaces (not the silo-wide cache, which readers write back to), so that a
        // change of primary is always recorded in the directory.
        var previous = _lastPrimary;
        var (primary, reachable, term) = await ChoosePrimaryAsync();
        _lastTerm = Math.Max(_lastTerm, term);
        try
        {
            // Fence first, then gather from what was fenced: an older writer can no longer count a copy there, so
            // nothing it acknowledges after the gather began can be missing from it (WriterTakeover says why).
            var mustReach = WriterTakeover.MustReach(Set);
            var fenced = await WriterTakeover.FenceAsync(Set, reachable, term, ProbeTimeout);
            if (!fenced.Contains(primary) || fenced.Count(set.IsMember) < mustReach)
            {
                // A retired replica takes no fence: the shard's removal began, and no writer opens again (final).
                if (await RetiredAsync(set, reachable))
                {
                    throw _retired = Retired();
                }

                throw new Pr2Exception(ErrorCode.ShardUnavailable,
                    $"shard {ShardCode}: a new writer (term {term}) could fence only {fenced.Count(set.IsMember)} of the {mustReach} replicas it needs{(fenced.Contains(primary) ? "" : ", not the one it chose")} (another writer, or replicas not answering); retry with the same MessageId");
            }

            var gathered = await WriterTakeover.GatherAsync(Set, primary, fenced, options.Value.CallTimeout / 2, (other, e) => Log.GatherFailed(logger, ShardCode, other, primary, e.Message));
            if (_move is { } move)
            {
                // A planned move opens on its target only with everything the writer it replaces acknowledged: the old
                // primary's entries. Otherwise the caller is told why, and the writer opens where a fail-over would.
                _moveFailure = primary != move.To ? $"replica {move.To} did not answer when the new writer chose its primary"
                    : !gathered.Contains(move.From) ? $"replica {move.To} could not take the entries of replica {move.From} (the primary it replaces) in time"
                    : null;
                if (primary == move.To && _moveFailure is not null)
                {
                    throw new Pr2Exception(ErrorCode.ShardUnavailable, _moveFailure);
                }
            }
            else
            {
                // Every replica not gathered now may hold what an earlier writer (this activation's own included) committed
                // and no one acknowledged, e.g. on a primary that stopped answering before its ack policy held. (A planned
                // move leaves them as they were: the writer it replaces drained, and all it wrote is on the old primary,
                // gathered.)
                // Members only: a joining replica was never a primary, so it holds no writer's entries of its own.
                _unsettled.UnionWith(set.Members);
            }

            _unsettled.ExceptWith(gathered);
            _fencedWithTerm = [.. fenced];
            if (gathered.Count(set.IsMember) < mustReach)
            {
                throw new Pr2Exception(ErrorCode.ShardUnavailable,
                    $"shard {ShardCode}: the new primary (replica {primary}) could not take the entries of {mustReach - 1} other replicas in time; retry with the same MessageId");
            }

            // Followers of this shard are woken after every commit (one-way calls), so they see new entries promptly.
            // Looked up per commit: rules come and go at runtime. The commit loop runs off the activation's
            // thread, where Orleans forbids touching the grain: it gets the factory and the shard code as values.
            var grains = GrainFactory;
            var shardCode = ShardCode;
            var antiEntropy = set.Replicas.Count > 1 ? GrainFactory.GetGrain<IAntiEntropyGrain>(ShardCode) : null;
            // Members only: a joining replica gets its copies from anti-entropy and counts once admitted.
            var others = set.Members.Where(index => index != primary).Select(index => set.Replicas[index]).ToList();
            // Half the call bound: a replica that cannot take a copy in that time gets the caller a clear refusal
            // ("only n of m replicas") rather than a timeout with an unknown outcome.
            var gate = new ReplicationGate(ShardCode, set.Replicas[primary], others, set.RequiredCopies, options.Value.CallTimeout / 2, term);
            // A commit that projected its records itself left the records agent at the head: it need not be woken.
            var recordsAgent = AgentCatalog.Key(RecordsProjector.AgentName, shardCode, primary);
            var writer = await JournalWriter.OpenAsync(ShardCode, set.Replicas[primary], options.Value.MaxBatchSize, logger, (_, recordsProjected) =>
            {
                foreach (var key in agents.KeysFollowing(shardCode, primary))
                {
                    if (!(recordsProjected && key == recordsAgent))
                    {
                        grains.GetGrain<IAgentGrain>(key).Wake();
                    }
                }

                antiEntropy?.Wake();
            }, set.RequiredCopies > 1 ? gate.EnsureAsync : null, options.Value.ProjectRecordsInline, recentEntries, term,
                options.Value.OverlapCommits);
            _gate = set.RequiredCopies > 1 ? gate : null;
            _lastPrimary = primary;
            Set.Promote(primary);
            localWriters.Publish(writer);
            if (primary != previous)
            {
                Log.PrimaryChosen(logger, ShardCode, previous, primary);
                _ = RecordPrimaryAsync(primary);
            }

            return writer;
        }
        catch (NpgsqlException e)
        {
            throw Unavailable(e);
        }
    }

    // Whether any of these replicas is retired (sql/023); one that does not answer, or has no such column yet, is not.
    private static async Task<bool> RetiredAsync(ShardReplicaSet set, IEnumerable<int> replicas)
    {
        var retired = await Task.WhenAll(replicas.Select(async index =>
        {
            try
            {
                using var timeout = new CancellationTokenSource(ProbeTimeout);
                await using var command = set.Replicas[index].CreateCommand("select retired_at is not null from pr2_writer_head");
                return await command.ExecuteScalarAsync(timeout.Token).WaitAsync(timeout.Token) is true;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
            {
                return false;
            }
        }));
        return retired.Any(r => r);
    }

    // The replica a move asked for when it answers; otherwise the reachable replica holding the most (highest version
    // vector; ties go to the one a writer opened on last, then to the lowest index). Also the replicas that answered, and
    // the term a new writer takes: above every epoch among them.
    private async Task<(int Primary, List<int> Reachable, long Term)> ChoosePrimaryAsync()
    {
        // A writer that failed over excludes nothing: a replica that answers again may be chosen again.
        // Members only: a joining replica never held an acknowledged entry the members lack (its admission copies first).
        _unheard ??= [.. Set.Members];
        // A removed replica is not read, fenced or gathered from: it may be gone.
        var candidates = await Task.WhenAll(Set.Live.Select(async index =>
        {
            var (reachable, held, epoch, primaryTerm) = await TryReadVectorAsync(index);
            return (Index: index, Held: held, Reachable: reachable, Epoch: epoch, PrimaryTerm: primaryTerm);
        }));
        var reachable = candidates.Where(c => c.Reachable).ToList();
        // Fenced and gathered from like the others, but never the primary while it joins (it may hold little yet).
        var best = reachable.Where(c => Set.IsMember(c.Index)).OrderByDescending(c => c.Index == _move?.To).ThenByDescending(c => c.Held).ThenByDescending(c => c.PrimaryTerm).ThenBy(c => c.Index)
            .FirstOrDefault();
        return best.Reachable
            ? (best.Index, reachable.ConvertAll(c => c.Index), Math.Max(reachable.Max(c => c.Epoch), _lastTerm) + 1)
            : throw new Pr2Exception(ErrorCode.ShardUnavailable, $"no replica of shard {ShardCode} is reachable; retry with the same MessageId");
    }

    // Waits for the append; each time it has gone ProbeAfter without an answer, probes the primary. True when
    // the probe finds the primary unreachable; false when the append completed or the budget ran out.
    private static async Task<bool> StalledAsync(JournalWriter writer, Task pending, DateTime deadline)
    {
        while (!pending.IsCompleted)
        {
            var remaining = deadline - DateTime.UtcNow;
            if (remaining <= TimeSpan.Zero)
            {
                return false;
            }

            // WaitAsync releases its timer as soon as the append completes; a Task.Delay per append would keep
            // thousands of one-second timers alive under load. Its outcome is the caller's to observe.
            await pending.WaitAsync(remaining < ProbeAfter ? remaining : ProbeAfter)
                .ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing | ConfigureAwaitOptions.ContinueOnCapturedContext);
            if (pending.IsCompleted)
            {
                return false;
            }

            if (!await AnswersAsync(writer.Source))
            {
                return true;
            }
        }

        return false;
    }

    // Leaves the batch in flight to finish or fail on its own (remembered as in doubt); what was queued behind it is
    // not sent there. New appends go to the next primary chosen.
    private void Abandon(JournalWriter writer)
    {
        GiveUp(writer);
        localWriters.Withdraw(writer);
        if (ReferenceEquals(_opening?.IsCompletedSuccessfully == true ? _opening.Result : null, writer))
        {
            _opening = null;
            _ = writer.DisposeAsync().AsTask();
        }
    }

    // WaitAsync stops waiting at once; Npgsql's own cancellation would first wait for the (paused) server.
    private static async Task<bool> AnswersAsync(NpgsqlDataSource replica)
    {
        try
        {
            using var timeout = new CancellationTokenSource(ProbeTimeout);
            await SelectOneAsync(replica, timeout.Token).WaitAsync(timeout.Token);
            return true;
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
        {
            return false;
        }
    }

    private static async Task SelectOneAsync(NpgsqlDataSource replica, CancellationToken cancellationToken)
    {
        await using var connection = await replica.OpenConnectionAsync(cancellationToken);
        await using var probe = new NpgsqlCommand("select 1", connection);
        await probe.ExecuteScalarAsync(cancellationToken);
    }

    // Records the new primary in the directory (shard 0), as a journaled message: auditable.
    private async Task RecordPrimaryAsync(int primary)
    {
        try
        {
            var actorId = $"shard/{ShardCode}";
            var actor = GrainFactory.GetGrain<IActorGrain>(0, actorId, null);
            var current = await actor.GetRecord();
            if (current.Status == RecordStatus.Live && DirectoryGrain.TryToShardEntry(current)?.Removal is null)
            {
                await actor.Send(new Message(MessageIds.New(), "journal-writer", new ActorRef(0, actorId), MessageKind.Modify,
                    $$"""{"primary": {{primary}}}""", current.Version));
            }
        }
        catch (Exception e)
        {
            Log.PrimaryNotRecorded(logger, e, ShardCode, primary);
        }
    }

    private Pr2Exception Retired() => new(ErrorCode.ShardRemoved, $"shard {ShardCode} was retired (its removal began): it takes no more writes");

    private Pr2Exception Unavailable(Exception e) =>
        new(ErrorCode.ShardUnavailable, $"shard {ShardCode} primary is unavailable ({DatabaseFailure.Describe(e)}); retry with the same MessageId");
}
