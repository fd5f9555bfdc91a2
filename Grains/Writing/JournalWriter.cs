using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;
using PR2.Grains.Records;
using PR2.Grains.Storage;

namespace PR2.Grains.Writing;

/// <summary>
/// The single writer of one shard's journal on its primary replica, with group commit: appends that
/// arrive while a transaction is in flight are queued and written together by the next one, so
/// throughput comes from batching rather than from more connections.
/// <para>
/// Each group commit is one transaction that (1) locks the writer head row and checks this writer's
/// epoch, (2) drops MessageIds already in the journal (answering them with their first ack) and checks
/// each actor's version, (3) inserts the new entries at head+1, head+2 ... with Lamport stamps from the
/// head's clock, and advances the head. Acks are released only after COMMIT returned (synchronous_commit
/// on). Because positions come from the locked head row, a failed transaction leaves no gap, and a
/// writer that opened later (higher epoch) fences this one out at its next commit.
/// </para>
/// <para>
/// Most commits take a shorter way, in one round trip: while the head is where this writer's last commit left it,
/// the writer knows the head, and the latest version of every actor it wrote, without asking; an actor it has not
/// written it takes at the version its grain proposes. If every append of the batch is then a new entry, it sends
/// the head's move (<c>pr2_move_writer_head</c>, which refuses unless the head is still there, under its row lock),
/// a check of the assumed versions and the inserts as one batch, one implicit transaction. If the head moved
/// (anti-entropy, a newer writer), an actor is not where it was assumed, or a MessageId is already in the journal
/// (a retry), that transaction fails as a whole and the batch takes the checked way above.
/// </para>
/// <para>
/// With records projection on, the same transaction also folds the new entries into the records view when the
/// records agent stands at the head (see <see cref="InlineRecords"/>), so most entries never need the agent.
/// </para>
/// </summary>
public sealed class JournalWriter : IAsyncDisposable
{
    private const string InsertEntries = """
        insert into pr2_journal (position, message_id, lamport_counter, lamport_shard, origin_replica, origin_position,
                                 actor_id, kind, actor_version, body, content_hash, sender, caused_by_counter, caused_by_shard, hops)
        select e.position, e.message_id, e.counter, $1, $2, e.origin_position,
               e.actor_id, e.kind, e.version, e.body::jsonb, e.hash, e.sender, e.caused_counter, e.caused_shard, e.hops
        from unnest($3::bigint[], $4::uuid[], $5::bigint[], $6::text[], $7::smallint[], $8::bigint[],
                    $9::text[], $10::bytea[], $11::text[], $12::bigint[], $13::integer[], $14::bigint[], $15::smallint[])
             as e(position, message_id, counter, actor_id, kind, version, body, hash, sender, caused_counter, caused_shard, origin_position, hops)
        """;

    // Latest version per actor: one backward index probe each, on (actor_id, actor_version); 0 when none.
    private const string LatestVersions = """
        select a.actor_id,
               coalesce((select j.actor_version from pr2_journal j where j.actor_id = a.actor_id
                         order by j.actor_version desc limit 1), 0)
        from unnest($1::text[]) as a(actor_id)
        """;

    // Raised by pr2_move_writer_head (sql/010) when the head is not where this writer left it.
    private const string HeadMoved = "PR2HM";

    // Raised by pr2_expect_latest_versions (sql/011) when an actor is not at the version its append assumed.
    private const string NotAtAssumedVersion = "PR2SV";

    // Bound on the versions a writer remembers between commits (an actor's id and a number each).
    private const int MaxRememberedActors = 100_000;

    // Whether each actor was canceled, whether it has a record: what an atomic batch is judged by (kept like the
    // versions). Two index probes each (sql/016; an insert is only ever accepted at version 1, on a missing record).
    private const string RecordStatuses = """
        select a.actor_id,
               exists (select 1 from pr2_journal j where j.actor_id = a.actor_id and j.kind = 3),
               exists (select 1 from pr2_journal j where j.actor_id = a.actor_id and j.actor_version = 1 and j.kind = 1)
        from unnest($1::text[]) as a(actor_id)
        """;

    private readonly Channel<PendingWrite> _queue = Channel.CreateUnbounded<PendingWrite>(
        new UnboundedChannelOptions { SingleReader = true });

    private readonly NpgsqlDataSource _source;
    private readonly Guid _replicaId;
    private readonly int _maxBatchSize;
    private readonly ILogger _logger;
    private readonly Action<long, bool> _committed;
    private readonly bool _projectRecords;
    private readonly Func<Task>? _beforeAck;
    private readonly RecentEntries? _recent;
    private readonly Task _loop;
    private volatile Pr2Exception? _fenced;

    // Each actor's latest version as of _versionsAt, the head position this writer's last commit left (or found
    // on opening). Only writers move the head, and a newer writer fences this one, so while the locked head is
    // still at _versionsAt nobody else appended (anti-entropy moves the head too) and these are the journal's
    // latest versions: the commit asks the database only about actors not in here. Loop thread only.
    private readonly Dictionary<string, long> _versions = new(StringComparer.Ordinal);

    // The record status of the actors whose status a batch read or this writer's entries moved on, as of _versionsAt too.
    private readonly Dictionary<string, RecordStatus> _statuses = new(StringComparer.Ordinal);
    private long _versionsAt;

    // The rest of the head at _versionsAt: its Lamport clock and this replica's origin position.
    private long _clockAt;
    private long _originAt;
    private volatile bool _closed;
    private volatile bool _broken;

    // Guarded by _sending: whether the owner abandoned this writer (nothing more is sent), the commits in flight (one, or
    // two with overlapped commits), and the MessageIds of batches whose commit failed on the connection (the writer then
    // broke: few): what may still commit, or have committed, on this database.
    private readonly Lock _sending = new();
    private volatile bool _abandoned;
    private readonly List<CommitAttempt> _attempts = [];
    private readonly List<Guid> _unknownOutcome = [];

    // Guarded by _sending: the latest MessageIds whose batch committed here (or may have) but failed all the same while
    // the writer went on (the ack policy refused it, a failure after COMMIT was sent): the owner retrying one elsewhere
    // must count it as maybe written. Only the latest are kept: the owner asks right after the failure.
    private const int KeptAfterCommit = 8_192;
    private readonly Queue<Guid> _failedAfterCommit = new();
    private readonly HashSet<Guid> _failedAfterCommitIds = [];

    // A killed server is seen only on a connection's next read, so a pooled connection unused for this long may have
    // lost its server unseen: the next commit goes in two round trips (the entries, then COMMIT), and a connection
    // that fails before COMMIT was sent says nothing was written (the server never commits without it).
    private static readonly TimeSpan ConfirmAfterIdle = TimeSpan.FromMilliseconds(200);

    // Loop-owned: when the last commit ended (Stopwatch ticks; 0 before the first), and the queue's pending wait (a
    // single-reader channel takes one waiter at a time, and the loop waits on it beside a commit in flight).
    private long _lastCommitEnded;
    private Task<bool>? _waitingForQueue;

    // Whether a commit from memory may be sent while the one before it is in flight (see StartFromMemory).
    private readonly bool _overlap;

    // How long a commit behind another waits, its inserts uncommitted, before it gives way (rolls back, planned again).
    private static readonly TimeSpan GiveWayAfter = TimeSpan.FromSeconds(1);

    // Commits sent behind another that committed, and those that rolled back because the one ahead did not (tests).
    private int _overlapped;
    private int _undone;

    private JournalWriter(int shard, long epoch, (long Position, long Clock, long OriginPosition) head, Guid replicaId, NpgsqlDataSource source, int maxBatchSize, ILogger logger,
        Action<long, bool> committed, Func<Task>? beforeAck, bool projectRecords, RecentEntries? recent, bool overlapCommits)
    {
        _projectRecords = projectRecords;
        // The ack policy's gate and the records projection want one commit at a time (see StartFromMemory).
        _overlap = overlapCommits && beforeAck is null && !projectRecords;
        _recent = recent;
        (_versionsAt, _clockAt, _originAt) = head;
        _committed = committed;
        _beforeAck = beforeAck;
        Shard = shard;
        Epoch = epoch;
        _replicaId = replicaId;
        _source = source;
        _maxBatchSize = maxBatchSize;
        _logger = logger;
        _loop = Task.Run(RunAsync);
    }

    public int Shard { get; }

    /// <summary>The replica database this writer appends to.</summary>
    public NpgsqlDataSource Source => _source;

    /// <summary>The id of the replica this writer appends to: the origin of every entry it writes.</summary>
    public Guid ReplicaId => _replicaId;

    /// <summary>This replica's own origin position after the last commit: every entry this writer acknowledged is at or below it.</summary>
    public long CommittedOriginPosition => Volatile.Read(ref _originAt);

    /// <summary>This writer's fencing epoch; a writer opened later has a higher one and wins.</summary>
    public long Epoch { get; }

    /// <summary>True once a newer writer took over: every further append fails with <see cref="ErrorCode.WriterFenced"/>.</summary>
    public bool IsFenced => _fenced is not null;

    /// <summary>
    /// True once a commit failed because the database could not be reached (not because of what was in the
    /// batch): the writer stopped and failed everything queued with <see cref="ErrorCode.ShardUnavailable"/>.
    /// </summary>
    public bool IsBroken => _broken;

    /// <summary>True while the writer takes appends: not closed, broken or fenced.</summary>
    public bool IsOpen => !_closed && !_abandoned && !IsBroken && _fenced is null;

    /// <summary>
    /// Takes over the shard's journal on <paramref name="source"/> by bumping the writer epoch.
    /// <paramref name="committed"/> is called after each commit that wrote entries, with the new head position and
    /// whether the commit also projected them into the records view (the records agent then need not be woken);
    /// <paramref name="beforeAck"/>, when given, runs after each commit and must succeed before the batch is
    /// acknowledged (the ack policy's replication); if it throws, the batch gets that error instead.
    /// <paramref name="projectRecords"/> turns on the records projection in the commit (<see cref="InlineRecords"/>).
    /// <paramref name="recent"/>, when given, keeps the entries each commit wrote for the agents of this silo.
    /// </summary>
    /// <paramref name="term"/>, when given, is the epoch the caller already fenced this replica with (see
    /// <see cref="FenceAsync"/>): the writer opens at it, or fails with <c>WriterFenced</c> when a newer writer came since.
    /// <paramref name="overlapCommits"/> lets the next batch's inserts run while a commit is in flight (see
    /// <c>Pr2:Write:OverlapCommits</c>; without an ack policy gate and records projection only).
    public static async Task<JournalWriter> OpenAsync(int shard, NpgsqlDataSource source, int maxBatchSize, ILogger logger,
        Action<long, bool>? committed = null, Func<Task>? beforeAck = null, bool projectRecords = false, RecentEntries? recent = null,
        long? term = null, bool overlapCommits = false, CancellationToken cancellationToken = default)
    {
        await using var command = source.CreateCommand(term is null
            ? """
              update pr2_writer_head set epoch = epoch + 1, primary_term = epoch + 1, updated_at = now() where retired_at is null
              returning epoch, position, clock, origin_position, (select replica_id from pr2_replica)
              """
            : """
              update pr2_writer_head set primary_term = epoch, updated_at = now() where epoch = $1 and retired_at is null
              returning epoch, position, clock, origin_position, (select replica_id from pr2_replica)
              """);
        if (term is { } fenced)
        {
            command.Parameters.Add(new() { Value = fenced });
        }

        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            await reader.DisposeAsync();
            await using var retired = source.CreateCommand("select retired_at is not null from pr2_writer_head");
            throw await retired.ExecuteScalarAsync(cancellationToken) is true
                ? new Pr2Exception(ErrorCode.ShardRemoved, $"shard {shard} was retired (its removal began): it takes no more writes")
                : new Pr2Exception(ErrorCode.WriterFenced, $"shard {shard}: a newer writer fenced this replica before the writer of term {term} could open on it; retry");
        }

        var (epoch, position, clock, originPosition, replicaId) = (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetGuid(4));
        Log.WriterOpened(logger, shard, epoch, position, clock);
        Pr2Metrics.WriterTakeovers.Add(1, new KeyValuePair<string, object?>("shard", shard));
        recent?.Forget(source);
        return new JournalWriter(shard, epoch, (position, clock, originPosition), replicaId, source, maxBatchSize, logger, committed ?? ((_, _) => { }), beforeAck,
            projectRecords, recent, overlapCommits);
    }

    /// <summary>Queues one append; the task completes after its group commit.</summary>
    public Task<WriteAck> AppendAsync(AppendRequest request) => TryAppendAsync(request) ?? Task.FromException<WriteAck>(Closed());

    /// <summary>Queues an atomic batch (see <see cref="IBatchGrain.Send"/>); the task completes after its group commit.</summary>
    public Task<BatchAck> AppendBatchAsync(AppendRequest[] requests) => TryAppendBatchAsync(requests) ?? Task.FromException<BatchAck>(Closed());

    /// <summary>
    /// <see cref="AppendAsync"/>, or null when the writer no longer queues (closed for a move of the primary, given up,
    /// or fenced): then nothing of the append was written, and another writer may take it as a first attempt.
    /// </summary>
    public Task<WriteAck>? TryAppendAsync(AppendRequest request)
    {
        var pending = new PendingAppend(request);
        return _queue.Writer.TryWrite(pending) ? pending.Task : null;
    }

    /// <summary><see cref="AppendBatchAsync"/>, or null when the writer no longer queues (see <see cref="TryAppendAsync"/>).</summary>
    public Task<BatchAck>? TryAppendBatchAsync(AppendRequest[] requests)
    {
        var pending = new PendingBatch(requests);
        return _queue.Writer.TryWrite(pending) ? pending.Task : null;
    }

    /// <summary>Why this writer takes no more appends (its fencing, or that it is closed).</summary>
    public Pr2Exception Closed() =>
        _fenced ?? new Pr2Exception(ErrorCode.ShardUnavailable, $"the journal writer of shard {Shard} is closed; retry with the same MessageId");

    /// <summary>
    /// For an owner that gives this writer up (its database stopped answering, or it broke): nothing more is sent, so
    /// appends still queued fail, never written. Returns the MessageIds that may still commit on this database: the
    /// batch in flight, and batches whose commit failed on the connection (their outcome is unknown).
    /// </summary>
    public IReadOnlyList<Guid> Abandon()
    {
        lock (_sending)
        {
            _abandoned = true;
            _queue.Writer.TryComplete();
            // Its replica may be lost and restored, its positions then holding other entries: the agents read it again.
            _recent?.Forget(_source);
            return [.. _attempts.SelectMany(a => a.MessageIds), .. _unknownOutcome];
        }
    }

    /// <summary>True when this append's batch committed here (or may have) but failed all the same, lately.</summary>
    public bool FailedAfterCommit(Guid messageId)
    {
        lock (_sending)
        {
            return _failedAfterCommitIds.Contains(messageId);
        }
    }

    /// <summary>Commits that were sent behind one in flight and committed (overlapped commits).</summary>
    internal int OverlappedCommits => Volatile.Read(ref _overlapped);

    /// <summary>Commits sent behind one in flight that rolled back, nothing written, because that one did not commit.</summary>
    internal int OverlapsUndone => Volatile.Read(ref _undone);

    /// <summary>True once its owner gave it up (<see cref="Abandon"/>).</summary>
    public bool IsAbandoned => _abandoned;

    /// <summary>Stops taking appends, commits what is queued, and returns when the last commit finished.</summary>
    public async ValueTask DisposeAsync()
    {
        _closed = true;
        _queue.Writer.TryComplete();
        await _loop;
        // Kept only while a writer is open on the journal: a closed one's replica may be lost and restored, its positions
        // then holding other entries.
        _recent?.Forget(_source);
    }

    private async Task RunAsync()
    {
        // Appends taken from the queue and not yet committed (gathered beside a commit in flight, or given back by an
        // overlapped commit that wrote nothing): they go before anything still queued.
        var carried = new List<PendingWrite>();
        OverlappedCommit? ahead = null;
        while (true)
        {
            if (ahead is null)
            {
                if (carried.Count > 0 && (_fenced is not null || _broken || _abandoned))
                {
                    var reason = _fenced ?? NotSent();
                    carried.ForEach(p => p.Fail(reason));
                    carried.Clear();
                }

                if (carried.Count == 0 && !await QueueReadable())
                {
                    break;
                }

                var batch = Take(carried);
                ahead = _overlap ? StartFromMemory(batch) : null;
                if (ahead is null)
                {
                    await CommitSeriallyAsync(batch);
                }

                continue;
            }

            // A commit is in flight: gather the next batch beside it, and send it overlapped once enough came.
            if (!await GatherBesideAsync(ahead, carried))
            {
                await FinishAsync(ahead, null, carried);
                ahead = null;
                continue;
            }

            ahead = await OverlapAsync(ahead, Take(carried), carried);
        }
    }

    // The carried appends, then the queued ones, up to the batch size in entries; an atomic batch larger than that goes
    // whole, alone or with what came before.
    private List<PendingWrite> Take(List<PendingWrite> carried)
    {
        var batch = new List<PendingWrite>(Math.Min(_maxBatchSize, 1024));
        var size = 0;
        var fromCarried = 0;
        while (size < _maxBatchSize && fromCarried < carried.Count)
        {
            batch.Add(carried[fromCarried]);
            size += carried[fromCarried++].Requests.Count;
        }

        carried.RemoveRange(0, fromCarried);
        while (size < _maxBatchSize && _queue.Reader.TryRead(out var next))
        {
            batch.Add(next);
            size += next.Requests.Count;
        }

        return batch;
    }

    private Task<bool> QueueReadable()
    {
        if (_waitingForQueue is null || _waitingForQueue.IsCompleted)
        {
            _waitingForQueue = _queue.Reader.WaitToReadAsync().AsTask();
        }

        return _waitingForQueue;
    }

    // One commit at a time: the way every commit went before overlapped commits, and still the way of any commit that
    // is not planned from memory.
    private async Task CommitSeriallyAsync(List<PendingWrite> batch)
    {
        var attempt = new CommitAttempt(batch);
        if (!TryStartSending(attempt))
        {
            return;
        }

        try
        {
            await CommitAsync(attempt);
        }
        catch (Exception e)
        {
            await FailOrSplitAsync(attempt, e);
        }
        finally
        {
            Untrack(attempt);
        }
    }

    private async Task FailOrSplitAsync(CommitAttempt attempt, Exception e)
    {
        var batch = attempt.Batch;
        if (!(batch.Count > 1 && !attempt.Done && IsEntryDataError(e)))
        {
            Fail(attempt, e);
            return;
        }

        // PostgreSQL refused the data of some entry (the door's checks should make this impossible): commit the
        // appends one at a time, so that only the one it refuses fails and the others of the batch go on.
        Log.GroupCommitSplit(_logger, e, Shard, batch.Count);
        Untrack(attempt);
        foreach (var pending in batch)
        {
            if (!IsBroken && !IsFenced)
            {
                await CommitSeriallyAsync([pending]);
            }
            else
            {
                // Broken, fenced or abandoned on the way: the rest goes to the next writer like anything queued.
                pending.Fail(_fenced ?? NotSent());
            }
        }
    }

    // Overlapped commits (Pr2:Write:OverlapCommits). A batch planned from memory is sent in one round trip, as it is
    // serially, but not awaited: the loop gathers the next batch meanwhile, plans it on top of the first one's plan (its
    // head, clock and versions, not yet committed) and sends its inserts in an open transaction (CommitBehindAsync).
    // Those run while the first one commits; only once it did does the second move the head from where the first left
    // it and COMMIT, so commits land and are acknowledged in order, and the head (whose row lock would make the
    // second wait for the whole of the first) is the one step they do not overlap. If the first does not commit, the
    // second rolls back before anything else is written, and its appends are planned again: a failed commit fails only
    // its own appends, and leaves no gap. Two commits at most are in flight.
    // Null when the batch is not for this way (it then commits serially).
    private OverlappedCommit? StartFromMemory(List<PendingWrite> batch)
    {
        if (System.Diagnostics.Stopwatch.GetElapsedTime(_lastCommitEnded) > ConfirmAfterIdle || PlanFromMemory(batch, null) is not { } quick)
        {
            return null;
        }

        var attempt = new CommitAttempt(batch);
        if (!TryStartSending(attempt))
        {
            return null; // failed, never sent
        }

        var commit = new OverlappedCommit(attempt, quick.Plan, (_versionsAt, _clockAt, _originAt));
        commit.Committed = SendFromMemoryAsync(commit, quick.Assumed);
        return commit;
    }

    private async Task<bool> SendFromMemoryAsync(OverlappedCommit commit, Dictionary<string, long> assumed)
    {
        Pr2Metrics.CommitBatchSize.Record(commit.Attempt.MessageIds.Length, new KeyValuePair<string, object?>("shard", Shard));
        await using var connection = await _source.OpenConnectionAsync();
        return await TryCommitFromMemoryAsync(connection, commit.Attempt, commit.From, commit.Plan, assumed, confirmFirst: false);
    }

    // Takes queued appends into carried until they make half as many entries as the commit in flight (so that commits do
    // not shrink to an append each), or until that commit ends (false: nothing to overlap, commit them after it).
    private async Task<bool> GatherBesideAsync(OverlappedCommit ahead, List<PendingWrite> carried)
    {
        var wanted = Math.Clamp(ahead.Attempt.MessageIds.Length / 2, 1, _maxBatchSize);
        var size = carried.Sum(p => p.Requests.Count);
        while (true)
        {
            while (size < _maxBatchSize && _queue.Reader.TryRead(out var next))
            {
                carried.Add(next);
                size += next.Requests.Count;
            }

            if (size >= wanted)
            {
                return true;
            }

            var readable = QueueReadable();
            await Task.WhenAny(readable, ahead.Committed);
            if (ahead.Committed.IsCompleted || (readable.IsCompleted && !readable.Result))
            {
                return false;
            }
        }
    }

    // Sends batch behind the commit in flight, finishes that one, and returns the one now in flight (null if none).
    private async Task<OverlappedCommit?> OverlapAsync(OverlappedCommit ahead, List<PendingWrite> batch, List<PendingWrite> carried)
    {
        // A MessageId of the commit ahead (a retry while the first attempt is in flight) waits for its answer.
        var aheadIds = ahead.Attempt.MessageIds.ToHashSet();
        if (batch.Any(p => p.Requests.Any(r => aheadIds.Contains(r.Message.MessageId))) || PlanFromMemory(batch, ahead.Plan) is not { } quick)
        {
            carried.InsertRange(0, batch);
            await FinishAsync(ahead, null, carried);
            return null;
        }

        var attempt = new CommitAttempt(batch);
        if (!TryStartSending(attempt))
        {
            await FinishAsync(ahead, null, carried);
            return null;
        }

        var behind = new OverlappedCommit(attempt, quick.Plan, (ahead.Plan.Position, ahead.Plan.Clock, ahead.Plan.OriginPosition));
        behind.Committed = CommitBehindAsync(behind, quick.Assumed);
        return await FinishAsync(ahead, behind, carried) ? behind : null;
    }

    // The inserts in an open transaction; once the commit ahead committed, the head's move from where it left it, and
    // COMMIT, in one round trip. False (rolled back, nothing written) when the commit ahead did not commit, the writer
    // was abandoned meanwhile, or the head or an actor was not where the plan assumed.
    private async Task<bool> CommitBehindAsync(OverlappedCommit commit, Dictionary<string, long> assumed)
    {
        var attempt = commit.Attempt;
        var plan = commit.Plan;
        Pr2Metrics.CommitBatchSize.Record(attempt.MessageIds.Length, new KeyValuePair<string, object?>("shard", Shard));
        await using var connection = await _source.OpenConnectionAsync();
        // A transaction left open by a silo that died unseen would hold these positions from anti-entropy and the next
        // writer until TCP noticed (hours): the server ends it after a bound well past the wait for the commit ahead.
        await using (var inserts = new NpgsqlBatch(connection) { BatchCommands = { new("begin"), new("set local idle_in_transaction_session_timeout = '15s'") } })
        {
            if (assumed.Count > 0)
            {
                inserts.BatchCommands.Add(ExpectVersionsCommand(assumed));
            }

            inserts.BatchCommands.Add(InsertCommand(plan));
            try
            {
                await inserts.ExecuteNonQueryAsync();
            }
            catch (PostgresException e) when (e.SqlState is NotAtAssumedVersion or PostgresErrorCodes.UniqueViolation || GivesWay(e))
            {
                await RollbackAsync(connection);
                return false;
            }
        }

        var go = await commit.Go.Task;
        lock (_sending)
        {
            go = go && !_abandoned;
            attempt.Sent = go;
        }

        if (!go)
        {
            await RollbackAsync(connection);
            return false;
        }

        await using var finish = new NpgsqlBatch(connection) { BatchCommands = { MoveHeadCommand(commit.From, plan), new("commit") } };
        try
        {
            await finish.ExecuteNonQueryAsync();
            Interlocked.Increment(ref _overlapped);
            Pr2Metrics.OverlappedCommits.Add(1, new KeyValuePair<string, object?>("shard", Shard), new KeyValuePair<string, object?>("outcome", "committed"));
            return true;
        }
        catch (PostgresException e) when (e.SqlState is HeadMoved || GivesWay(e))
        {
            attempt.Sent = false; // refused before COMMIT ran
            await RollbackAsync(connection);
            return false;
        }
    }

    // Taking its positions before the head's lock, a commit behind can close a cycle with anti-entropy or a newer writer
    // (the head first, then the positions), which PostgreSQL breaks by failing one side: it is planned again.
    private static bool GivesWay(PostgresException e) =>
        e.SqlState is PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.LockNotAvailable;

    private static async Task RollbackAsync(NpgsqlConnection connection)
    {
        await using var rollback = new NpgsqlCommand("rollback", connection);
        await rollback.ExecuteNonQueryAsync();
    }

    // Takes the outcome of an overlapped commit, in commit order: acknowledges it, or redoes it the checked way (nothing
    // was written: the head or an actor was not where it was planned), or fails it. The commit behind it (if any) is let
    // go on only if this one committed (true: it is still in flight); if not, it has rolled back before this one is
    // redone (its uncommitted inserts hold the positions a redo takes), and its appends are given back, to be planned
    // again before anything queued after them (false).
    private async Task<bool> FinishAsync(OverlappedCommit commit, OverlappedCommit? behind, List<PendingWrite> carried)
    {
        var attempt = commit.Attempt;
        var shardTag = new KeyValuePair<string, object?>("shard", Shard);
        var committed = false;
        try
        {
            Exception? failure = null;
            try
            {
                if (behind is not null && await Task.WhenAny(commit.Committed, Task.Delay(GiveWayAfter)) != commit.Committed)
                {
                    // Slow: it may be waiting for the head's row lock held by anti-entropy, itself waiting for the positions
                    // the one behind holds uncommitted. The one behind gives way (rolls back) and is planned again.
                    behind.Go.TrySetResult(false);
                }

                committed = await commit.Committed;
            }
            catch (Exception e)
            {
                failure = e;
            }

            Pr2Metrics.CommitDuration.Record(System.Diagnostics.Stopwatch.GetElapsedTime(commit.Started).TotalSeconds, shardTag);
            behind?.Go.TrySetResult(committed);
            if (!committed && behind is not null)
            {
                try
                {
                    await behind.Committed;
                }
                catch (Exception)
                {
                    // Its own finish answers it; here it only had to end.
                }
            }

            if (committed)
            {
                attempt.Done = true;
                await AcknowledgeAsync(attempt, commit.Plan, null);
            }
            else if (failure is not null)
            {
                await FailOrSplitAsync(attempt, failure);
            }
            else if (_abandoned)
            {
                attempt.Batch.ForEach(p => p.Fail(NotSent()));
            }
            else
            {
                await using var connection = await _source.OpenConnectionAsync();
                if (await CommitCheckedAsync(connection, attempt) is { } outcome)
                {
                    attempt.Done = true;
                    await AcknowledgeAsync(attempt, outcome.Plan, outcome.Projected);
                }
            }
        }
        catch (Exception e)
        {
            await FailOrSplitAsync(attempt, e);
        }
        finally
        {
            behind?.Go.TrySetResult(false); // whatever went wrong above, it must not wait for good
            Untrack(attempt);
            _lastCommitEnded = System.Diagnostics.Stopwatch.GetTimestamp();
        }

        if (committed || behind is null)
        {
            return true;
        }

        // The one behind rolled back (it was told to): answered after this one, its appends given back after this one's.
        Untrack(behind.Attempt);
        Interlocked.Increment(ref _undone);
        Pr2Metrics.OverlappedCommits.Add(1, new KeyValuePair<string, object?>("shard", Shard), new KeyValuePair<string, object?>("outcome", "undone"));
        if (behind.Committed.IsFaulted)
        {
            await FailOrSplitAsync(behind.Attempt, behind.Committed.Exception!.InnerException!);
        }
        else
        {
            carried.InsertRange(0, behind.Attempt.Batch);
        }

        return false;
    }

    // Marks the attempt as in flight, unless the writer was abandoned: then its batch fails, never sent.
    private bool TryStartSending(CommitAttempt attempt)
    {
        lock (_sending)
        {
            if (!_abandoned)
            {
                _attempts.Add(attempt);
                return true;
            }
        }

        var notSent = NotSent();
        attempt.Batch.ForEach(p => p.Fail(notSent));
        return false;
    }

    private void Untrack(CommitAttempt attempt)
    {
        lock (_sending)
        {
            _attempts.Remove(attempt);
        }
    }

    // Under _sending.
    private void RememberFailedAfterCommit(CommitAttempt attempt)
    {
        foreach (var messageId in attempt.MessageIds)
        {
            if (_failedAfterCommitIds.Add(messageId))
            {
                _failedAfterCommit.Enqueue(messageId);
            }
        }

        while (_failedAfterCommit.Count > KeptAfterCommit)
        {
            _failedAfterCommitIds.Remove(_failedAfterCommit.Dequeue());
        }
    }

    private Pr2Exception NotSent() => new(ErrorCode.ShardUnavailable,
        $"the journal writer of shard {Shard} stopped before this append was sent; nothing was written, retry with the same MessageId");

    private static IEnumerable<Guid> MessageIds(List<PendingWrite> batch) => batch.SelectMany(p => p.Requests).Select(r => r.Message.MessageId);

    // Whatever went wrong, the loop must live on: fail this batch (nothing was acknowledged) and serve the next one.
    // The next transaction re-reads the head, so nothing is skipped.
    private void Fail(CommitAttempt attempt, Exception e)
    {
        var batch = attempt.Batch;
        Log.GroupCommitFailed(_logger, e, Shard, batch.Count);
        if (batch.Count == 1 && !attempt.Done && IsEntryDataError(e))
        {
            // Alone in its transaction, so this entry is what PostgreSQL refuses, and will refuse again: final.
            batch[0].Fail(new Pr2Exception(ErrorCode.BadBody,
                $"PostgreSQL refused this entry's data ({DatabaseFailure.Describe(e)}); nothing was written"));
            return;
        }

        // Before COMMIT was sent, the server rolls the transaction back whatever became of the connection; after it, an
        // error the server reported (not the connection's loss) rolled it back too, unless it committed first.
        var connectionFailed = IsConnectionFailure(e);
        var maybeCommitted = attempt.Sent && (attempt.Done || connectionFailed || e is not PostgresException);
        var reason = new Pr2Exception(ErrorCode.ShardUnavailable, maybeCommitted
            ? $"shard {Shard} journal could not be written ({DatabaseFailure.Describe(e)}); the outcome is unknown, retry with the same MessageId"
            : $"shard {Shard} journal could not be written ({DatabaseFailure.Describe(e)}); nothing was written, retry with the same MessageId");
        // Recorded before the appends fail, so that an owner giving this writer up on their answer finds them.
        lock (_sending)
        {
            _attempts.Remove(attempt);
            if (maybeCommitted && connectionFailed)
            {
                _unknownOutcome.AddRange(attempt.MessageIds);
            }
            else if (maybeCommitted)
            {
                RememberFailedAfterCommit(attempt);
            }
        }

        if (connectionFailed)
        {
            // The database is gone (or going): stop here so the owner can fail over; nothing queued is lost,
            // it is refused and retried elsewhere with the same MessageIds.
            _broken = true;
            _queue.Writer.TryComplete();
            batch.ForEach(p => p.Fail(reason));
            while (_queue.Reader.TryRead(out var queued))
            {
                queued.Fail(NotSent());
            }

            return;
        }

        batch.ForEach(p => p.Fail(reason));
    }

    private async Task CommitAsync(CommitAttempt attempt)
    {
        var batch = attempt.Batch;
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var shardTag = new KeyValuePair<string, object?>("shard", Shard);
        Pr2Metrics.CommitBatchSize.Record(attempt.MessageIds.Length, shardTag);
        using var timed = new CommitTimer(started, shardTag);
        // One commit serves many calls: its span (and the SQL under it) joins the first call's trace and links the others.
        using var span = Pr2Metrics.Traces.StartActivity("pr2.commit", System.Diagnostics.ActivityKind.Internal, batch[0].Trace,
            [new("pr2.shard", Shard), new("pr2.batch_size", batch.Count)],
            batch.Count > 1 ? [.. batch.Skip(1).Where(p => p.Trace != default).Select(p => new System.Diagnostics.ActivityLink(p.Trace))] : null);
        var confirmFirst = System.Diagnostics.Stopwatch.GetElapsedTime(_lastCommitEnded) > ConfirmAfterIdle;
        try
        {
            await CommitOnConnectionAsync(attempt, confirmFirst);
        }
        finally
        {
            _lastCommitEnded = System.Diagnostics.Stopwatch.GetTimestamp();
        }
    }

    private async Task CommitOnConnectionAsync(CommitAttempt attempt, bool confirmFirst)
    {
        await using var connection = await _source.OpenConnectionAsync();
        var outcome = PlanFromMemory(attempt.Batch, null) is { } quick
            && await TryCommitFromMemoryAsync(connection, attempt, (_versionsAt, _clockAt, _originAt), quick.Plan, quick.Assumed, confirmFirst)
            ? (quick.Plan, null)
            : await CommitCheckedAsync(connection, attempt);
        if (outcome is not { } committed)
        {
            return; // fenced
        }

        attempt.Done = true;
        await AcknowledgeAsync(attempt, committed.Plan, committed.Projected);
    }

    // After a commit: the ack policy's gate, what the writer remembers, the agents woken, and the appends answered.
    private async Task AcknowledgeAsync(CommitAttempt attempt, CommitPlan plan, Dictionary<string, RecordState>? projected)
    {
        var batch = attempt.Batch;
        if (_beforeAck is not null)
        {
            try
            {
                await _beforeAck();
            }
            catch (Pr2Exception refused)
            {
                // Committed here, not acknowledged: recorded before the appends fail, so that an owner giving this writer
                // up on their answer (its database broke meanwhile) knows a retry elsewhere may find them written.
                lock (_sending)
                {
                    RememberFailedAfterCommit(attempt);
                }

                batch.ForEach(p => p.Fail(refused));
                return;
            }
        }

        RememberHead(plan);
        if (plan.NewEntries.Count > 0)
        {
            lock (_sending)
            {
                if (!_abandoned)
                {
                    _recent?.Committed(_source, plan.NewEntries.ConvertAll(ToEntry));
                }
            }

            // Before the acknowledgements, whose continuations run on this loop: whoever holds an ack can count on
            // the agents having been woken for it.
            _committed(plan.Position, projected is not null);
        }

        plan.Complete();
    }

    // An entry as the journal now holds it, but for RecordedAt: the database's commit time is not read back, so this
    // is the silo's clock (agents that read RecordedAt do not take entries from memory).
    private JournalEntry ToEntry((AppendRequest Request, WriteAck Ack, long OriginPosition) entry)
    {
        var (request, ack, originPosition) = entry;
        var message = request.Message;
        return new JournalEntry(ack.Position, message.MessageId, ack.Stamp, _replicaId, originPosition, message.Receiver, message.Kind,
            request.Version, request.CanonicalBody, message.Sender, message.CausedBy, DateTimeOffset.UtcNow, message.Hops);
    }

    // The plan of a batch from what this writer remembers, if every append in it becomes a new entry there; null
    // otherwise (a refusal or a repeated MessageId needs the journal's answer). An actor it does not remember is
    // taken to be where its grain says (the version proposed - 1); those go into Assumed, checked in the commit. An
    // atomic batch needs each actor's status too: remembered, or a first insert taken to find no record (version 0,
    // checked the same way); a batch with any other actor takes the checked way.
    // With after, the plan of a commit still in flight, the batch is planned on top of it: its head, versions and statuses
    // first, then what the writer remembers.
    private (CommitPlan Plan, Dictionary<string, long> Assumed)? PlanFromMemory(List<PendingWrite> batch, CommitPlan? after)
    {
        if (_projectRecords)
        {
            return null;
        }

        var latest = new Dictionary<string, long>(StringComparer.Ordinal);
        var statuses = new Dictionary<string, RecordStatus>(StringComparer.Ordinal);
        var assumed = new Dictionary<string, long>(StringComparer.Ordinal);
        var entries = 0;
        foreach (var pending in batch)
        {
            var atomic = pending is PendingBatch;
            foreach (var request in pending.Requests)
            {
                entries++;
                var message = request.Message;
                var actorId = message.Receiver.ActorId;
                if (!latest.ContainsKey(actorId))
                {
                    if (after is not null && after.LatestVersions.TryGetValue(actorId, out var version) || _versions.TryGetValue(actorId, out version))
                    {
                        latest[actorId] = version;
                    }
                    else if (!atomic)
                    {
                        latest[actorId] = assumed[actorId] = request.Version - 1;
                    }
                    else if (message.Kind == MessageKind.Insert && message.ExpectedVersion is null or 0)
                    {
                        latest[actorId] = assumed[actorId] = 0;
                        statuses[actorId] = RecordStatus.Missing;
                    }
                    else
                    {
                        return null;
                    }

                    if (after is not null && after.Statuses.TryGetValue(actorId, out var status) || _statuses.TryGetValue(actorId, out status))
                    {
                        statuses[actorId] = status;
                    }
                }

                if (atomic && !statuses.ContainsKey(actorId))
                {
                    return null;
                }
            }
        }

        var (position, clock, origin) = after is null ? (_versionsAt, _clockAt, _originAt) : (after.Position, after.Clock, after.OriginPosition);
        var plan = new CommitPlan(Shard, _replicaId, position, clock, origin, [], latest, statuses, CommitPlan.WallClock(TimeProvider.System));
        foreach (var pending in batch)
        {
            plan.Add(pending);
        }

        return plan.NewEntries.Count == entries ? (plan, assumed) : null;
    }

    // One round trip: the head moved on from where this writer left it, the assumed versions checked, and the entries
    // inserted, as one implicit transaction (two round trips, COMMIT apart, when confirmFirst). False (nothing written)
    // when the head is no longer there, an actor is not where it was assumed, or a MessageId is taken.
    private async Task<bool> TryCommitFromMemoryAsync(NpgsqlConnection connection, CommitAttempt attempt, (long, long, long) from, CommitPlan plan,
        Dictionary<string, long> assumed, bool confirmFirst)
    {
        await using var transaction = confirmFirst ? await connection.BeginTransactionAsync() : null;
        await using var write = new NpgsqlBatch(connection, transaction) { BatchCommands = { MoveHeadCommand(from, plan) } };
        if (assumed.Count > 0)
        {
            write.BatchCommands.Add(ExpectVersionsCommand(assumed));
        }

        write.BatchCommands.Add(InsertCommand(plan));
        try
        {
            attempt.Sent = transaction is null;
            await write.ExecuteNonQueryAsync();
            if (transaction is not null)
            {
                attempt.Sent = true;
                await transaction.CommitAsync();
            }

            return true;
        }
        catch (PostgresException e) when (e.SqlState is HeadMoved or NotAtAssumedVersion or PostgresErrorCodes.UniqueViolation)
        {
            attempt.Sent = false; // the implicit transaction failed whole
            return false;
        }
    }

    // The head moved from where the writer (or the commit ahead) left it to where the plan leaves it; refused (PR2HM)
    // unless it is still there, under its row lock.
    private NpgsqlBatchCommand MoveHeadCommand((long Position, long Clock, long OriginPosition) from, CommitPlan plan) =>
        new("select pr2_move_writer_head($1, $2, $3, $4, $5, $6, $7)")
        {
            Parameters =
            {
                new() { Value = Epoch }, new() { Value = from.Position }, new() { Value = from.Clock }, new() { Value = from.OriginPosition },
                new() { Value = plan.Position }, new() { Value = plan.Clock }, new() { Value = plan.OriginPosition },
            },
        };

    // The versions a plan assumed for actors the writer had not written; refused (PR2SV) unless each is the latest.
    private static NpgsqlBatchCommand ExpectVersionsCommand(Dictionary<string, long> assumed) =>
        new("select pr2_expect_latest_versions($1, $2)")
        {
            Parameters =
            {
                JournalStore.Array(assumed.Keys.ToArray(), NpgsqlDbType.Text),
                JournalStore.Array(assumed.Values.ToArray(), NpgsqlDbType.Bigint),
            },
        };

    // The checked way: lock the head, look up MessageIds and versions, insert. Null when this writer was fenced.
    private async Task<(CommitPlan Plan, Dictionary<string, RecordState>? Projected)?> CommitCheckedAsync(NpgsqlConnection connection, CommitAttempt attempt)
    {
        var batch = attempt.Batch;
        await using var transaction = await connection.BeginTransactionAsync();
        var (epoch, replica, head, known, latestVersions, statuses, records) = await LockHeadAndCheckAsync(connection, transaction, batch);
        if (epoch != Epoch || replica != _replicaId)
        {
            // Another replica identity under the same database name: it was restored from a backup (pr2 restore) while
            // this writer was open on it. Never written under the identity of the database it replaced: fenced, a new
            // writer takes over.
            Fence(epoch, batch, replica != _replicaId ? $"its replica's database was replaced (restored from a backup, identity {replica})" : null);
            return null;
        }

        var plan = new CommitPlan(Shard, _replicaId, head.Position, head.Clock, head.OriginPosition, known, latestVersions, statuses, CommitPlan.WallClock(TimeProvider.System));
        // The plan moves latestVersions on as it accepts entries: after the commit they are the journal's.
        foreach (var pending in batch)
        {
            plan.Add(pending);
        }

        var projected = InlineRecords.Fold(records, head.Position, plan);
        if (plan.NewEntries.Count > 0)
        {
            await InsertAndAdvanceAsync(connection, transaction, plan, head.Position, projected);
        }

        attempt.Sent = true;
        await transaction.CommitAsync();
        return (plan, projected);
    }

    private async Task<(long Epoch, Guid Replica, (long Position, long Clock, long OriginPosition) Head, Dictionary<Guid, (WriteAck Ack, byte[] Hash)> Known,
            Dictionary<string, long> LatestVersions, Dictionary<string, RecordStatus> Statuses, RecordsAtMark Records)>
        LockHeadAndCheckAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, List<PendingWrite> batch)
    {
        var messageIds = MessageIds(batch).Distinct().ToArray();
        var actorIds = batch.SelectMany(p => p.Requests).Select(r => r.Message.Receiver.ActorId).Distinct(StringComparer.Ordinal).ToArray();
        var batchActors = batch.OfType<PendingBatch>().SelectMany(p => p.Requests).Select(r => r.Message.Receiver.ActorId).Distinct(StringComparer.Ordinal).ToArray();
        var unknownActors = actorIds.Where(a => !_versions.ContainsKey(a)).ToArray();
        var rememberedActors = actorIds.Where(_versions.ContainsKey).ToArray();
        await using var check = new NpgsqlBatch(connection, transaction)
        {
            BatchCommands =
            {
                new("select epoch, position, clock, origin_position, (select replica_id from pr2_replica) from pr2_writer_head for update"),
                new("""
                    select message_id, actor_id, position, lamport_counter, lamport_shard, actor_version, content_hash, origin_replica, origin_position
                    from pr2_journal where message_id = any($1)
                    """) { Parameters = { JournalStore.Array(messageIds, NpgsqlDbType.Uuid) } },
                new(LatestVersions) { Parameters = { JournalStore.Array(unknownActors, NpgsqlDbType.Text) } },
            },
        };
        if (batchActors.Length > 0)
        {
            check.BatchCommands.Add(new(RecordStatuses) { Parameters = { JournalStore.Array(batchActors, NpgsqlDbType.Text) } });
        }

        if (_projectRecords)
        {
            InlineRecords.AddChecks(check, Shard, actorIds);
        }

        await using var reader = await check.ExecuteReaderAsync();
        await reader.ReadAsync();
        var epoch = reader.GetInt64(0);
        var replica = reader.GetGuid(4);
        (long Position, long Clock, long OriginPosition) head = (reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3));

        await reader.NextResultAsync();
        var known = new Dictionary<Guid, (WriteAck, byte[])>();
        while (await reader.ReadAsync())
        {
            var ack = new WriteAck(
                reader.GetGuid(0),
                new ActorRef(Shard, reader.GetString(1)),
                new LamportStamp(reader.GetInt64(3), reader.GetInt32(4)),
                reader.GetInt64(2),
                reader.GetInt64(5),
                Duplicate: true,
                Origin: reader.GetGuid(7),
                OriginPosition: reader.GetInt64(8));
            known[ack.MessageId] = (ack, reader.GetFieldValue<byte[]>(6));
        }

        await reader.NextResultAsync();
        var latest = new Dictionary<string, long>(StringComparer.Ordinal);
        await ReadVersionsAsync(reader, latest);
        var statuses = new Dictionary<string, RecordStatus>(StringComparer.Ordinal);
        if (batchActors.Length > 0)
        {
            await reader.NextResultAsync();
            while (await reader.ReadAsync())
            {
                statuses[reader.GetString(0)] = reader.GetBoolean(1) ? RecordStatus.Canceled : reader.GetBoolean(2) ? RecordStatus.Live : RecordStatus.Missing;
            }
        }

        var records = RecordsAtMark.None;
        if (_projectRecords)
        {
            await reader.NextResultAsync();
            records = await InlineRecords.ReadChecksAsync(reader);
        }

        await reader.DisposeAsync();
        if (head.Position == _versionsAt)
        {
            foreach (var actorId in rememberedActors)
            {
                latest[actorId] = _versions[actorId];
            }

            foreach (var actorId in actorIds)
            {
                if (!statuses.ContainsKey(actorId) && _statuses.TryGetValue(actorId, out var status))
                {
                    statuses[actorId] = status;
                }
            }
        }
        else
        {
            // Someone else appended since this writer's last commit (anti-entropy): what it remembers may be old.
            _versions.Clear();
            _statuses.Clear();
            if (rememberedActors.Length > 0)
            {
                await using var command = new NpgsqlCommand(LatestVersions, connection, transaction) { Parameters = { JournalStore.Array(rememberedActors, NpgsqlDbType.Text) } };
                await using var again = await command.ExecuteReaderAsync();
                await ReadVersionsAsync(again, latest);
            }
        }

        return (epoch, replica, head, known, latest, statuses, records);
    }

    // Rows of LatestVersions: actor id, latest version.
    private static async Task ReadVersionsAsync(NpgsqlDataReader reader, Dictionary<string, long> into)
    {
        while (await reader.ReadAsync())
        {
            into[reader.GetString(0)] = reader.GetInt64(1);
        }
    }

    // After a commit: the head it left, and the versions the batch read or wrote, which are the journal's there.
    private void RememberHead(CommitPlan plan)
    {
        if (_versions.Count + plan.LatestVersions.Count > MaxRememberedActors)
        {
            _versions.Clear();
            _statuses.Clear();
        }

        foreach (var (actorId, version) in plan.LatestVersions)
        {
            _versions[actorId] = version;
        }

        foreach (var (actorId, status) in plan.Statuses)
        {
            _statuses[actorId] = status;
        }

        (_versionsAt, _clockAt, _originAt) = (plan.Position, plan.Clock, plan.OriginPosition);
    }

    // Inserts the plan's entries and moves the head from headBefore; with projected records, writes those and moves
    // the records agent's mark along with the head.
    private async Task InsertAndAdvanceAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CommitPlan plan, long headBefore,
        Dictionary<string, RecordState>? projected)
    {
        await using var write = new NpgsqlBatch(connection, transaction)
        {
            BatchCommands =
            {
                InsertCommand(plan),
                new("update pr2_writer_head set position = $1, clock = $2, origin_position = $3, updated_at = now() where epoch = $4")
                {
                    Parameters = { new() { Value = plan.Position }, new() { Value = plan.Clock }, new() { Value = plan.OriginPosition }, new() { Value = Epoch } },
                },
            },
        };
        if (projected is not null)
        {
            InlineRecords.AddWrites(write, Shard, headBefore, plan.Position, projected);
        }

        await write.ExecuteNonQueryAsync();
    }

    // The insert of the plan's new entries, at the positions and stamps the plan gave them.
    private NpgsqlBatchCommand InsertCommand(CommitPlan plan)
    {
        var entries = plan.NewEntries;
        return new NpgsqlBatchCommand(InsertEntries)
        {
            Parameters =
            {
                new() { Value = Shard },
                new() { Value = _replicaId },
                JournalStore.Array(entries.Select(e => e.Ack.Position).ToArray(), NpgsqlDbType.Bigint),
                JournalStore.Array(entries.Select(e => e.Ack.MessageId).ToArray(), NpgsqlDbType.Uuid),
                JournalStore.Array(entries.Select(e => e.Ack.Stamp.Counter).ToArray(), NpgsqlDbType.Bigint),
                JournalStore.Array(entries.Select(e => e.Ack.Actor.ActorId).ToArray(), NpgsqlDbType.Text),
                JournalStore.Array(entries.Select(e => (short)e.Request.Message.Kind).ToArray(), NpgsqlDbType.Smallint),
                JournalStore.Array(entries.Select(e => e.Ack.Version).ToArray(), NpgsqlDbType.Bigint),
                JournalStore.Array(entries.Select(e => e.Request.CanonicalBody).ToArray(), NpgsqlDbType.Text),
                JournalStore.Array(entries.Select(e => e.Request.ContentHash).ToArray(), NpgsqlDbType.Bytea),
                JournalStore.Array(entries.Select(e => e.Request.Message.Sender).ToArray(), NpgsqlDbType.Text),
                JournalStore.Array(entries.Select(e => e.Request.Message.CausedBy?.Counter).ToArray(), NpgsqlDbType.Bigint),
                JournalStore.Array(entries.Select(e => e.Request.Message.CausedBy?.Shard).ToArray(), NpgsqlDbType.Integer),
                JournalStore.Array(entries.Select(e => e.OriginPosition).ToArray(), NpgsqlDbType.Bigint),
                JournalStore.Array(entries.Select(e => (short)e.Request.Message.Hops).ToArray(), NpgsqlDbType.Smallint),
            },
        };
    }

    /// <summary>
    /// Raises a replica's epoch to <paramref name="term"/> unless it is already there or beyond (another writer's newer or
    /// equal term) or the replica is retired (<see cref="RetireAsync"/>): true when this call fenced it. A writer whose epoch is lower then fails its next commit there, and a
    /// replication gate of a lower term no longer counts the replica. Two writers can never both fence one replica with
    /// one term, so two of them cannot both fence a majority with the same term.
    /// </summary>
    public static async Task<bool> FenceAsync(NpgsqlDataSource replica, long term, CancellationToken cancellationToken = default)
    {
        // A replica fenced here and never opened on since is marked -1: "not a primary", never the 0 of a replica no
        // writer of this version has touched (JournalStore reads 0 as before sql/017).
        await using var command = replica.CreateCommand("""
            update pr2_writer_head set epoch = $1, primary_term = case when primary_term = 0 then -1 else primary_term end, updated_at = now()
            where epoch < $1 and retired_at is null
            """);
        command.Parameters.Add(new() { Value = term });
        return await command.ExecuteNonQueryAsync(cancellationToken) == 1;
    }

    /// <summary>
    /// Retires <paramref name="replica"/> for good (sql/023): its epoch moves on once, which fences the writer open there
    /// (its next commit fails, nothing of it written), and from then no writer opens on it (<see cref="ErrorCode.ShardRemoved"/>)
    /// and no fence moves its epoch. Under the head's row lock: a commit lands wholly before it or not at all. Idempotent.
    /// </summary>
    public static async Task RetireAsync(NpgsqlDataSource replica, CancellationToken cancellationToken = default)
    {
        await using var command = replica.CreateCommand("""
            update pr2_writer_head set retired_at = now(), epoch = epoch + 1, updated_at = now(),
                primary_term = case when primary_term = 0 then -1 else primary_term end
            where retired_at is null
            """);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    // What one entry's data can make PostgreSQL (or Npgsql, encoding it) refuse: a data exception (class 22) or a
    // limit (class 54), never the connection.
    private static bool IsEntryDataError(Exception e) => e switch
    {
        PostgresException p => p.SqlState.StartsWith("22", StringComparison.Ordinal) || p.SqlState.StartsWith("54", StringComparison.Ordinal),
        System.Text.EncoderFallbackException => true,
        _ => e.InnerException is { } inner && IsEntryDataError(inner),
    };

    // Connection lost, server shutting down or refusing connections, or a timeout: the replica, not the batch.
    private static bool IsConnectionFailure(Exception e) => e switch
    {
        PostgresException p => p.SqlState.StartsWith("08", StringComparison.Ordinal) || p.SqlState.StartsWith("57P", StringComparison.Ordinal),
        NpgsqlException => true,
        TimeoutException or System.Net.Sockets.SocketException or IOException => true,
        _ => e.InnerException is { } inner && IsConnectionFailure(inner),
    };

    private void Fence(long currentEpoch, List<PendingWrite> batch, string? replaced = null)
    {
        Log.WriterFenced(_logger, Shard, Epoch, currentEpoch);
        _fenced = new Pr2Exception(ErrorCode.WriterFenced, replaced is null
            ? $"the journal writer of shard {Shard} (epoch {Epoch}) was replaced by epoch {currentEpoch}; retry with the same MessageId"
            : $"the journal writer of shard {Shard} stopped: {replaced}; retry with the same MessageId");
        // What it kept of the journal for this silo's agents may not be this database's any more.
        _recent?.Forget(_source);
        _queue.Writer.TryComplete();
        batch.ForEach(p => p.Fail(_fenced));
        while (_queue.Reader.TryRead(out var queued))
        {
            queued.Fail(_fenced);
        }
    }

    // Records the commit's duration however it ends.
    private readonly struct CommitTimer(long started, KeyValuePair<string, object?> shard) : IDisposable
    {
        public void Dispose() => Pr2Metrics.CommitDuration.Record(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds, shard);
    }
}
