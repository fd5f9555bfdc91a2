using PR2.Grains.Records;

namespace PR2.Grains.Writing;

/// <summary>
/// Decides, inside one group commit, what each queued append becomes: a new entry at the next position,
/// the first acknowledgement of a MessageId already written, or a refusal. An atomic batch becomes new entries
/// all together, its first acknowledgement again, or a refusal of the whole. Pure bookkeeping, no I/O.
/// Stamps are hybrid logical clock counters: each entry's counter is above the previous one and above its cause (the
/// Lamport rules), and not below <c>wallClock</c>, the writer's wall clock in microseconds since the Unix epoch. So a
/// new writer that took over from a replica missing the latest entries still stamps above them, unless the old writer's
/// clock ran ahead of the new one's by more than the time the take-over took (docs/architecture.md, "Lamport stamps").
/// </summary>
internal sealed class CommitPlan(
    int shard,
    Guid replicaId,
    long position,
    long clock,
    long originPosition,
    Dictionary<Guid, (WriteAck Ack, byte[] Hash)> known,
    Dictionary<string, long> latestVersions,
    Dictionary<string, RecordStatus> statuses,
    long wallClock)
{
    // Each pending write's release, run after the commit in queue order.
    private readonly List<Action> _outcomes = [];
    private readonly Dictionary<Guid, (WriteAck Ack, byte[] Hash)> _planned = [];

    /// <summary>The entries to insert, in position order, with the origin position each gets on this replica.</summary>
    public List<(AppendRequest Request, WriteAck Ack, long OriginPosition)> NewEntries { get; } = [];

    /// <summary>The latest version of each actor of the batch after the planned entries (as given, moved on by them).</summary>
    public IReadOnlyDictionary<string, long> LatestVersions => latestVersions;

    /// <summary>
    /// The record status of the actors it was given one for (every actor of an atomic batch must have one), moved on by
    /// the planned entries.
    /// </summary>
    public IReadOnlyDictionary<string, RecordStatus> Statuses => statuses;

    /// <summary>The head position after the planned entries.</summary>
    public long Position { get; private set; } = position;

    /// <summary>The Lamport clock after the planned entries.</summary>
    public long Clock { get; private set; } = clock;

    /// <summary>This replica's own origin sequence after the planned entries.</summary>
    public long OriginPosition { get; private set; } = originPosition;

    /// <summary>Microseconds since the Unix epoch on <paramref name="time"/>: the floor of the stamps a plan gives.</summary>
    public static long WallClock(TimeProvider time) => (time.GetUtcNow() - DateTimeOffset.UnixEpoch).Ticks / TimeSpan.TicksPerMicrosecond;

    public void Add(PendingWrite pending)
    {
        switch (pending)
        {
            case PendingAppend append:
                AddAppend(append);
                break;
            case PendingBatch batch:
                AddBatch(batch);
                break;
        }
    }

    // One append from an actor (or the insert path), which judged the message itself: only the version is checked.
    private void AddAppend(PendingAppend pending)
    {
        var request = pending.Request;
        var message = request.Message;
        if (Earlier(message.MessageId) is { } earlier)
        {
            if (earlier.Hash.AsSpan().SequenceEqual(request.ContentHash))
            {
                var duplicate = earlier.Ack with { Duplicate = true };
                _outcomes.Add(() => pending.Succeed(duplicate));
            }
            else
            {
                var conflict = Conflict(message.MessageId, earlier.Ack);
                _outcomes.Add(() => pending.Fail(conflict));
            }

            return;
        }

        var actorId = message.Receiver.ActorId;
        var latest = latestVersions.GetValueOrDefault(actorId);
        if (request.Version != latest + 1)
        {
            var stale = new Pr2Exception(ErrorCode.StaleActor,
                $"actor {message.Receiver} asked for version {request.Version} but the journal is at version {latest}");
            _outcomes.Add(() => pending.Fail(stale));
            return;
        }

        var ack = Plan(request, request.Version);
        _outcomes.Add(() => pending.Succeed(ack));
    }

    // An atomic batch: every message judged against its actor as the messages before it in the batch leave it (the
    // actor's rules, MessageRules), all planned or none.
    private void AddBatch(PendingBatch pending)
    {
        var requests = pending.Requests;
        var refusals = new List<MessageRefusal>();
        var earlierAcks = new List<(int Index, WriteAck Ack)>(requests.Count);
        var ids = new HashSet<Guid>();
        var found = 0;
        for (var i = 0; i < requests.Count; i++)
        {
            var request = requests[i];
            var id = request.Message.MessageId;
            if (!ids.Add(id))
            {
                refusals.Add(new MessageRefusal(i, id, ErrorCode.BadMessage, $"MessageId {id} appears twice in the batch"));
            }
            else if (Earlier(id) is { } earlier)
            {
                found++;
                if (earlier.Hash.AsSpan().SequenceEqual(request.ContentHash))
                {
                    earlierAcks.Add((i, earlier.Ack with { Duplicate = true }));
                }
                else
                {
                    refusals.Add(new MessageRefusal(i, id, ErrorCode.IdempotencyConflict, Conflict(id, earlier.Ack).Message));
                }
            }
        }

        if (refusals.Count == 0 && earlierAcks.Count == requests.Count)
        {
            // Sent again, it is the batch written before only if these are that commit's entries in this order: one
            // origin, consecutive origin positions (a batch is written whole and copied whole, so a replica holds it so).
            var first = earlierAcks[0].Ack;
            if (earlierAcks.All(e => e.Ack.Origin == first.Origin && e.Ack.OriginPosition == first.OriginPosition + e.Index))
            {
                var again = new BatchAck([.. earlierAcks.Select(e => e.Ack)], Duplicate: true);
                _outcomes.Add(() => pending.Succeed(again));
                return;
            }

            const string regrouped = "every MessageId of this batch was accepted before, but not as this batch (in another order, grouping, or one by one): send new messages in a new batch";
            _outcomes.Add(() => pending.Fail(new Pr2Exception([.. requests.Select((r, i) => new MessageRefusal(i, r.Message.MessageId, ErrorCode.IdempotencyConflict, regrouped))], requests.Count)));
            return;
        }

        // Some messages written before and some not: no batch was ever written so (they are written whole).
        foreach (var (index, ack) in found < requests.Count ? earlierAcks : [])
        {
            refusals.Add(new MessageRefusal(index, ack.MessageId, ErrorCode.IdempotencyConflict,
                $"MessageId {ack.MessageId} was accepted before (position {ack.Position}) without the rest of this batch; a batch is accepted whole: send new messages in a new batch"));
        }

        if (refusals.Count == 0)
        {
            var versions = new Dictionary<string, (long Version, RecordStatus Status)>(StringComparer.Ordinal);
            for (var i = 0; i < requests.Count; i++)
            {
                var message = requests[i].Message;
                var actorId = message.Receiver.ActorId;
                var (version, status) = versions.TryGetValue(actorId, out var held) ? held : (latestVersions.GetValueOrDefault(actorId), StatusOf(actorId));
                if (MessageRules.Refusal(message.Receiver, status, version, message) is { } refusal)
                {
                    refusals.Add(new MessageRefusal(i, message.MessageId, refusal.Code, refusal.Message));
                    continue;
                }

                versions[actorId] = (version + 1, MessageRules.After(status, message.Kind));
            }
        }

        if (refusals.Count > 0)
        {
            var refused = new Pr2Exception([.. refusals.OrderBy(r => r.Index)], requests.Count);
            _outcomes.Add(() => pending.Fail(refused));
            return;
        }

        var acks = new WriteAck[requests.Count];
        for (var i = 0; i < requests.Count; i++)
        {
            var request = requests[i];
            var actorId = request.Message.Receiver.ActorId;
            acks[i] = Plan(request, latestVersions.GetValueOrDefault(actorId) + 1);
        }

        var accepted = new BatchAck(acks);
        _outcomes.Add(() => pending.Succeed(accepted));
    }

    private RecordStatus StatusOf(string actorId) => statuses.TryGetValue(actorId, out var status)
        ? status
        : throw new InvalidOperationException($"the writer planned a batch without the status of {actorId}");

    private (WriteAck Ack, byte[] Hash)? Earlier(Guid messageId) =>
        known.TryGetValue(messageId, out var earlier) || _planned.TryGetValue(messageId, out earlier) ? earlier : null;

    private static Pr2Exception Conflict(Guid messageId, WriteAck earlier) => new(ErrorCode.IdempotencyConflict,
        $"MessageId {messageId} was already used for a different message (to {earlier.Actor}); use a new MessageId");

    // A new entry at the next position, with the next stamp, giving its actor version; moves the plan's state on.
    private WriteAck Plan(AppendRequest request, long version)
    {
        var message = request.Message;
        var actorId = message.Receiver.ActorId;
        latestVersions[actorId] = version;
        if (statuses.TryGetValue(actorId, out var status))
        {
            statuses[actorId] = MessageRules.After(status, message.Kind);
        }

        Position++;
        OriginPosition++;
        Clock = Math.Max(Math.Max(Clock, message.CausedBy?.Counter ?? 0) + 1, wallClock);
        var ack = new WriteAck(message.MessageId, message.Receiver, new LamportStamp(Clock, shard), Position, version, Origin: replicaId, OriginPosition: OriginPosition);
        _planned[message.MessageId] = (ack, request.ContentHash);
        NewEntries.Add((request.Version == version ? request : request with { Version = version }, ack, OriginPosition));
        return ack;
    }

    /// <summary>Releases every outcome; call only after the transaction committed.</summary>
    public void Complete()
    {
        foreach (var release in _outcomes)
        {
            release();
        }
    }
}
