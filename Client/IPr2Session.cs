namespace PR2.Client;

/// <summary>
/// One unit of work against the cluster (a web request, a command): its writes and reads carry one read token, so its
/// <see cref="ReadConsistency.Session"/> reads see its own writes and never go back in time, whichever replica answers.
/// Every method takes a <see cref="CancellationToken"/>: cancelling stops the wait, not a write already sent (its
/// outcome is then unknown: send it again with the same MessageId to learn it).
/// </summary>
public interface IPr2Session
{
    /// <summary>What this session has seen; hand it on (<see cref="Observe"/>) to continue the session elsewhere.</summary>
    ReadToken SessionToken { get; }

    /// <summary>Adds what a token names to this session (e.g. a token from another process of the same user).</summary>
    void Observe(ReadToken token);

    /// <summary>Sends a fully built message; returns its acknowledgement once committed, or throws <see cref="Pr2Exception"/>.</summary>
    Task<WriteAck> SendAsync(Message message, CancellationToken cancellationToken = default);

    /// <summary>
    /// Sends an atomic batch to one shard: <paramref name="messages"/> (to any actors of <paramref name="shard"/>, each with
    /// its own MessageId) are written all together in batch order, each judged as if sent alone after the ones before it,
    /// or none is. A refusal of any message refuses the batch: <see cref="Pr2Exception"/> with
    /// <see cref="ErrorCode.BatchRefused"/> and every refused message in <see cref="Pr2Exception.Refusals"/>. Sending the
    /// same batch again returns its first acknowledgement (<see cref="BatchAck.Duplicate"/>). Limits: 1,000 messages and
    /// 4 MiB of bodies by default (<see cref="ErrorCode.BatchTooLarge"/>).
    /// </summary>
    Task<BatchAck> SendBatchAsync(int shard, IReadOnlyList<Message> messages, CancellationToken cancellationToken = default);

    /// <summary>Sends a message with a JSON body (a JSON object as text; none for cancel).</summary>
    Task<WriteAck> SendAsync(int shard, string actorId, MessageKind kind, string? body, Guid? messageId = null, long? expectedVersion = null,
        string sender = "client", CancellationToken cancellationToken = default);

    /// <summary>Sends a message whose body is <paramref name="body"/> serialized to a JSON object.</summary>
    Task<WriteAck> SendAsync<T>(int shard, string actorId, MessageKind kind, T body, Guid? messageId = null, long? expectedVersion = null,
        string sender = "client", CancellationToken cancellationToken = default);

    /// <summary>Creates an actor's record with <paramref name="body"/> as its state (refused with <c>RecordExists</c> when it has one).</summary>
    Task<WriteAck> InsertAsync<T>(int shard, string actorId, T body, Guid? messageId = null, CancellationToken cancellationToken = default);

    /// <summary>Changes an actor's record by a JSON merge patch: the members <paramref name="patch"/> sets (nulls are left out).</summary>
    Task<WriteAck> ModifyAsync<T>(int shard, string actorId, T patch, long? expectedVersion = null, Guid? messageId = null,
        CancellationToken cancellationToken = default);

    /// <summary>Cancels an actor's record; a canceled record stays canceled.</summary>
    Task<WriteAck> CancelAsync(int shard, string actorId, long? expectedVersion = null, Guid? messageId = null, CancellationToken cancellationToken = default);

    /// <summary>An actor's record read in one snapshot of one replica.</summary>
    Task<RecordRead> ReadRecordAsync(int shard, string actorId, ReadConsistency consistency = ReadConsistency.Session,
        CancellationToken cancellationToken = default);

    /// <summary>An actor's record with its state deserialized as <typeparamref name="T"/>.</summary>
    Task<Pr2Record<T>> ReadRecordAsync<T>(int shard, string actorId, ReadConsistency consistency = ReadConsistency.Session,
        CancellationToken cancellationToken = default);

    /// <summary>An actor's record as it was at a Lamport stamp (e.g. one from a <see cref="WriteAck"/>).</summary>
    Task<RecordRead> ReadRecordAsOfAsync(int shard, string actorId, LamportStamp asOf, CancellationToken cancellationToken = default);

    /// <summary>One page of the records of a type whose state contains <paramref name="containsJson"/>; pass its cursor for the next.</summary>
    Task<RecordPage> QueryRecordsAsync(int shard, string type, string? containsJson = null, string? cursor = null, int limit = 100,
        ReadConsistency consistency = ReadConsistency.Session, CancellationToken cancellationToken = default);
}
