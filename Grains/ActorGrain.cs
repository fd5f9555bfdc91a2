using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using PR2.Grains.Configuration;
using PR2.Grains.Json;
using PR2.Grains.Records;
using PR2.Grains.Storage;
using PR2.Grains.Writing;

namespace PR2.Grains;

/// <summary>
/// One actor (shard code + <c>type/key</c>). Not reentrant: messages are handled one at a time, which is
/// what makes it the actor's queue and gives versions 1, 2, 3 in acceptance order. It keeps its record
/// in memory, folded from the journal on first use, and validates every message against it before
/// anything reaches the shard's journal writer. First inserts usually come through <see cref="InsertGrain"/> and
/// never reach the actor; the actor reads its journal when it is first used after one. Atomic batches
/// (<see cref="BatchGrain"/>) write without it too: the writer's version check stops an append from a record held
/// from before (StaleActor: read again and retry), a refusal is always judged against the journal, and
/// <see cref="GetRecord"/> asks the journal for the latest version before it answers from memory.
/// </summary>
public sealed class ActorGrain(ShardRegistry shards, TopologyFollower topology, ShardAppender appender, RecentMerges merges, IOptions<WriteOptions> options, ILogger<ActorGrain> logger)
    : Grain, IActorGrain
{
    // A read of the primary slower than this asks the writer whether the primary is still there, leaving
    // the rest of the call's budget for a fail-over and a second read.
    private static readonly TimeSpan FirstReadLimit = TimeSpan.FromSeconds(1.5);

    private ActorRef? _self;
    private Pr2Exception? _invalidAddress;
    private RecordState _record = RecordState.Missing;
    private bool _loaded;

    // Whether the record held can be trusted without reading the journal. A missing one cannot: a first insert may
    // be appended without activating its actor (InsertGrain), so "no entries" is read again before it is acted on.
    private bool Known => _loaded && _record.Status != RecordStatus.Missing;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var shard = this.GetPrimaryKeyLong(out var actorId);
        try
        {
            _self = MessageEnvelope.Resolve(shards, shard, actorId);
        }
        catch (Pr2Exception e)
        {
            _invalidAddress = e; // an unknown shard is asked about again on every call (SelfAsync)
        }

        return Task.CompletedTask;
    }

    public async Task<WriteAck> Send(Message message)
    {
        var self = await SelfAsync();
        await topology.KnowsCauseAsync(message);

        MessageEnvelope.Check(message, self, shards);
        var body = MessageBody.Parse(message.Kind, message.Body, options.Value.MaxBodyBytes);
        var hash = MessageBody.ContentHash(self, message.Kind, body.Canonical);
        using var budget = new CancellationTokenSource(options.Value.CallTimeout);
        try
        {
            return await SendWithinAsync(self, message, body, hash, budget.Token);
        }
        catch (OperationCanceledException) when (budget.IsCancellationRequested)
        {
            // The append may still commit later: the retry is then answered by MessageId, and a version it took
            // from this actor is caught by the writer's version check (StaleActor), so giving up here is safe.
            _loaded = false;
            throw ShardAppender.Unconfirmed(self.Shard, options.Value.CallTimeoutSeconds);
        }
    }

    public async Task<ActorRecord> GetRecord()
    {
        var self = await SelfAsync();
        using var budget = new CancellationTokenSource(options.Value.CallTimeout);
        try
        {
            // An atomic batch may have moved the record on without this activation: one index probe says whether it did.
            if (Known && await OnPrimaryAsync(self, JournalStore.LatestVersionOnPrimaryAsync, budget.Token) != _record.Version)
            {
                _loaded = false;
            }

            await EnsureLoadedAsync(self, budget.Token);
        }
        catch (OperationCanceledException) when (budget.IsCancellationRequested)
        {
            throw new Pr2Exception(ErrorCode.ShardUnavailable,
                $"shard {self.Shard} did not answer within {options.Value.CallTimeoutSeconds:0.#} s; retry");
        }

        return _record.ToRecord(self);
    }

    private async Task<WriteAck> SendWithinAsync(ActorRef self, Message message, MessageBody body, byte[] hash, CancellationToken budget)
    {
        for (var attempt = 0; ; attempt++)
        {
            // The first insert to an actor this activation has not read (a new order, say) is sent as if the actor had
            // no entries, without reading its journal first: the writer checks that in the commit and answers
            // StaleActor when the actor does exist, and the second attempt reads the journal and refuses as usual.
            var assumedNew = !Known && attempt == 0 && MessageRouting.IsFirstInsert(message);
            var readJournal = !assumedNew && await EnsureLoadedAsync(self, budget);
            var record = assumedNew ? RecordState.Missing : _record;
            if (RefusalFor(message, record) is not null && !assumedNew && !readJournal)
            {
                // A refusal is judged against the journal, never against a record held from before: after a fail-over
                // and anti-entropy the journal may hold entries this activation never saw (they were written elsewhere).
                _loaded = false;
                await EnsureLoadedAsync(self, budget);
                record = _record;
            }

            if (RefusalFor(message, record) is { } refusal)
            {
                // A retry of a message accepted earlier is not refused: it gets its first acknowledgement (once the ack
                // policy holds for it), and while an earlier append of it may still commit, the outcome is unknown.
                WriteAck? earlier;
                try
                {
                    earlier = await GrainFactory.GetGrain<IShardWriterGrain>(self.Shard).FindAccepted(message.MessageId, hash, self, record.Version).WaitAsync(budget);
                }
                catch (Pr2Exception e) when (e.Code == ErrorCode.StaleActor)
                {
                    // Entries of this actor reached the primary while the writer settled (gathered from a replica an
                    // earlier writer used): judged against them, the message may well be accepted. Read and judge again,
                    // and after a few rounds let the writer judge it against the journal under its lock.
                    _loaded = false;
                    if (attempt < 2)
                    {
                        continue;
                    }

                    return await AppendJudgedByWriterAsync(self, new AppendRequest(message, body.Canonical, hash, 0), budget);
                }

                if (earlier is not null)
                {
                    _loaded = false; // accepted before, possibly after this activation loaded: read the journal next time
                }

                return earlier ?? throw refusal;
            }

            // Worked out before the append, so that the records agent on this silo finds the merge done (RecentMerges).
            var proposed = record.Propose(message.Kind, body.Canonical, merges);
            var request = new AppendRequest(message, body.Canonical, hash, record.Version + 1);
            try
            {
                var ack = await appender.AppendAsync(self.Shard, request, budget);
                if (ack.Duplicate)
                {
                    // Accepted before, possibly after this activation loaded: read the journal again next time.
                    _loaded = false;
                }
                else
                {
                    // The writer accepted the version: the record is the one this activation holds plus this entry.
                    _record = record.Accept(proposed, ack.Stamp, ack.Position);
                    _loaded = true;
                }

                return ack;
            }
            catch (Pr2Exception e) when (e.Code == ErrorCode.StaleActor && attempt > 0)
            {
                // Moved on under it again after it read its journal: atomic batches to this actor may land in every group
                // commit, and read-and-retry would race them for ever. The writer judges the message itself instead.
                _loaded = false;
                return await AppendJudgedByWriterAsync(self, request, budget);
            }
            catch (Pr2Exception e) when (e.Code == ErrorCode.StaleActor && attempt == 0)
            {
                if (!assumedNew)
                {
                    Log.ActorStale(logger, self);
                }

                _loaded = false;
            }
            catch (Pr2Exception e) when (e.IsRetriable)
            {
                // The outcome is unknown (it may have committed): fold from the journal before the next message.
                _loaded = false;
                throw;
            }
        }
    }

    // The message as a batch of one: the writer judges it against the journal by the actor's rules (MessageRules) and
    // gives it the next version, or answers a retry by MessageId.
    private async Task<WriteAck> AppendJudgedByWriterAsync(ActorRef self, AppendRequest request, CancellationToken budget)
    {
        try
        {
            return (await appender.AppendBatchAsync(self.Shard, [request with { Version = 0 }], budget)).Acks[0];
        }
        catch (Pr2Exception e) when (e.Code == ErrorCode.BatchRefused && e.Refusals is [var refusal])
        {
            throw new Pr2Exception(refusal.Code, refusal.Reason);
        }
    }

    private ActorRef Self() => _self ?? throw _invalidAddress!;

    // An activation that found its shard unknown (or not usable here) asks the directory again on every call: it may have been added since.
    private async Task<ActorRef> SelfAsync()
    {
        if (_self is null && _invalidAddress is { Code: ErrorCode.UnknownShard or ErrorCode.ShardUnavailable })
        {
            var shard = this.GetPrimaryKeyLong(out var actorId);
            if (await topology.KnowsAsync(shard))
            {
                _self = MessageEnvelope.Resolve(shards, shard, actorId);
                _invalidAddress = null;
            }
        }

        return Self();
    }

    private Pr2Exception? RefusalFor(Message message, RecordState record) => MessageRules.Refusal(_self!, record.Status, record.Version, message);

    // True when it read the journal (the record held could not be trusted).
    private async Task<bool> EnsureLoadedAsync(ActorRef self, CancellationToken budget)
    {
        if (Known)
        {
            return false;
        }

        var entries = await OnPrimaryAsync(self, JournalStore.ReadActorOnPrimaryAsync, budget);
        _record = RecordState.Fold(entries);
        _loaded = true;
        Log.ActorLoaded(logger, self, _record.Version);
        return true;
    }

    // Reads from the shard's primary; if it does not answer within FirstReadLimit, asks the shard's writer
    // which replica is the primary now (it may fail over) and reads there with what is left of the budget.
    // A replica that answers but is no longer the primary (it says so: the primary moved on another silo) is read
    // again where the writer says the primary is: it may lack what was written since.
    // WaitAsync stops waiting at once: Npgsql's own cancellation needs an answer from the (maybe paused) server.
    private async Task<T> OnPrimaryAsync<T>(ActorRef self, Func<NpgsqlDataSource, ActorRef, CancellationToken, Task<(T Value, bool Primary)>> read,
        CancellationToken budget)
    {
        var set = shards.Get(self.Shard);
        var primary = set.PrimaryIndex;
        try
        {
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(budget);
            attempt.CancelAfter(FirstReadLimit);
            var (value, isPrimary) = await read(set.Replicas[primary], self, attempt.Token).WaitAsync(attempt.Token);
            if (isPrimary)
            {
                return value;
            }

            // Read again where the writer says the primary is (it waits for a switch in progress), and only trust a read
            // that itself says it is on the primary: the same replica may have become primary after the first read.
            var current = await CurrentPrimary.AskAsync(GrainFactory, set, FirstReadLimit).WaitAsync(budget);
            var (again, confirmed) = await read(set.Replicas[current], self, budget).WaitAsync(budget);
            return confirmed ? again : throw new Pr2Exception(ErrorCode.ShardUnavailable,
                $"shard {self.Shard}: replica {current} is not yet the primary its writer names (the primary is changing); retry");
        }
        catch (Exception first) when ((first is NpgsqlException or TimeoutException or OperationCanceledException) && !budget.IsCancellationRequested)
        {
            try
            {
                var current = await GrainFactory.GetGrain<IShardWriterGrain>(self.Shard).ReportUnreachable(primary).WaitAsync(budget);
                set.Promote(current);
                // As above: only a read that says it is on the primary (the writer may have moved on since it answered).
                var (value, confirmed) = await read(set.Replicas[current], self, budget).WaitAsync(budget);
                return confirmed ? value : throw new Pr2Exception(ErrorCode.ShardUnavailable,
                    $"shard {self.Shard}: replica {current} is not yet the primary its writer names (the primary is changing); retry");
            }
            catch (Exception again) when (again is NpgsqlException or TimeoutException)
            {
                throw new Pr2Exception(ErrorCode.ShardUnavailable, $"shard {self.Shard} primary is unavailable ({DatabaseFailure.Describe(again)}); retry with the same MessageId");
            }
        }
    }
}
