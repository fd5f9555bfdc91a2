namespace PR2.Grains.Writing;

/// <summary>
/// Decides, inside one group commit, what each queued append becomes: a new entry at the next position,
/// the first acknowledgement of a MessageId already written, or a refusal. Pure bookkeeping, no I/O.
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
    long wallClock)
{
    private readonly List<(PendingAppend Pending, WriteAck? Ack, Exception? Refusal)> _outcomes = [];
    private readonly Dictionary<Guid, (WriteAck Ack, byte[] Hash)> _planned = [];

    /// <summary>The entries to insert, in position order, with the origin position each gets on this replica.</summary>
    public List<(AppendRequest Request, WriteAck Ack, long OriginPosition)> NewEntries { get; } = [];

    /// <summary>The latest version of each actor of the batch after the planned entries (as given, moved on by them).</summary>
    public IReadOnlyDictionary<string, long> LatestVersions => latestVersions;

    /// <summary>The head position after the planned entries.</summary>
    public long Position { get; private set; } = position;

    /// <summary>The Lamport clock after the planned entries.</summary>
    public long Clock { get; private set; } = clock;

    /// <summary>This replica's own origin sequence after the planned entries.</summary>
    public long OriginPosition { get; private set; } = originPosition;

    /// <summary>Microseconds since the Unix epoch on <paramref name="time"/>: the floor of the stamps a plan gives.</summary>
    public static long WallClock(TimeProvider time) => (time.GetUtcNow() - DateTimeOffset.UnixEpoch).Ticks / TimeSpan.TicksPerMicrosecond;

    public void Add(PendingAppend pending)
    {
        var request = pending.Request;
        var message = request.Message;
        if (known.TryGetValue(message.MessageId, out var earlier) || _planned.TryGetValue(message.MessageId, out earlier))
        {
            _outcomes.Add(earlier.Hash.AsSpan().SequenceEqual(request.ContentHash)
                ? (pending, earlier.Ack with { Duplicate = true }, null)
                : (pending, null, new Pr2Exception(ErrorCode.IdempotencyConflict,
                    $"MessageId {message.MessageId} was already used for a different message (to {earlier.Ack.Actor}); use a new MessageId")));
            return;
        }

        var actorId = message.Receiver.ActorId;
        var latest = latestVersions.GetValueOrDefault(actorId);
        if (request.Version != latest + 1)
        {
            _outcomes.Add((pending, null, new Pr2Exception(ErrorCode.StaleActor,
                $"actor {message.Receiver} asked for version {request.Version} but the journal is at version {latest}")));
            return;
        }

        latestVersions[actorId] = request.Version;
        Position++;
        OriginPosition++;
        Clock = Math.Max(Math.Max(Clock, message.CausedBy?.Counter ?? 0) + 1, wallClock);
        var ack = new WriteAck(message.MessageId, message.Receiver, new LamportStamp(Clock, shard), Position, request.Version, Origin: replicaId, OriginPosition: OriginPosition);
        _planned[message.MessageId] = (ack, request.ContentHash);
        NewEntries.Add((request, ack, OriginPosition));
        _outcomes.Add((pending, ack, null));
    }

    /// <summary>Releases every outcome; call only after the transaction committed.</summary>
    public void Complete()
    {
        foreach (var (pending, ack, refusal) in _outcomes)
        {
            if (ack is not null)
            {
                pending.Succeed(ack);
            }
            else
            {
                pending.Fail(refusal!);
            }
        }
    }
}
