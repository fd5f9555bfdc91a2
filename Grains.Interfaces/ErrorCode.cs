namespace PR2;

/// <summary>
/// Machine-readable reason a request was refused. The numeric values are part of the wire and HTTP
/// contract: add new codes at the end, never renumber.
/// </summary>
public enum ErrorCode
{
    /// <summary>The shard code is not in the configured topology.</summary>
    UnknownShard = 1,

    /// <summary>The actor id is not of the form <c>type/key</c> or uses characters outside the allowed set.</summary>
    BadActorId = 2,

    /// <summary>The body is not valid JSON or not a JSON object.</summary>
    BadBody = 3,

    /// <summary>The body is larger than the configured limit.</summary>
    BodyTooLarge = 4,

    /// <summary><c>insert</c> sent to an actor whose record is live.</summary>
    RecordExists = 5,

    /// <summary><c>modify</c> or <c>cancel</c> sent to an actor that has no record.</summary>
    RecordMissing = 6,

    /// <summary>Any message sent to an actor whose record was canceled: canceled records stay canceled.</summary>
    RecordCanceled = 7,

    /// <summary>The message's expected version differs from the record's current version.</summary>
    VersionMismatch = 8,

    /// <summary>The MessageId was already used for a message with different content.</summary>
    IdempotencyConflict = 9,

    /// <summary>The message itself is malformed (empty id, unknown kind, receiver not the addressed actor).</summary>
    BadMessage = 10,

    /// <summary>The shard's journal cannot be written right now; the message was not acknowledged. Safe to retry with the same MessageId.</summary>
    ShardUnavailable = 11,

    /// <summary>Another journal writer took over the shard; this one stopped. Safe to retry with the same MessageId.</summary>
    WriterFenced = 12,

    /// <summary>The actor's cached state was behind the journal (a duplicate activation wrote first). Safe to retry.</summary>
    StaleActor = 13,

    /// <summary>A rule definition is invalid; the message says where (a JSON path) and why.</summary>
    BadRule = 14,

    /// <summary>No rule of that name exists (or it was removed).</summary>
    UnknownRule = 15,

    /// <summary>No replica caught up with a session read's token within the wait bound. Safe to retry.</summary>
    SessionNotCovered = 16,

    /// <summary>
    /// The actor is one of PR2's own in the control shard (<c>rule/*</c>, <c>shard/*</c>, <c>agent/*</c> in shard 0): it is
    /// written only by PR2, through its operations (the rules API, the configured topology), never by a message.
    /// </summary>
    ReservedActor = 17,

    /// <summary>
    /// The cluster did not answer: the silo or gateway the call went through failed, or the call timed out. For a
    /// write the outcome is unknown (it may have committed, or may still). Safe to retry with the same MessageId: the
    /// retry gets the true outcome.
    /// </summary>
    Unavailable = 18,

    /// <summary>
    /// An atomic batch was refused because at least one of its messages was: nothing of the batch was written.
    /// <see cref="Pr2Exception.Refusals"/> lists each refused message (its place in the batch, MessageId, code, reason).
    /// </summary>
    BatchRefused = 19,

    /// <summary>An atomic batch has more messages, or more body bytes, than the cluster takes in one batch (the message says which limit).</summary>
    BatchTooLarge = 20,

    /// <summary>
    /// The operation this call followed was canceled by an operator (<c>pr2 projections cancel</c>) before it finished: it
    /// ended without effect. Start it again if it is still wanted.
    /// </summary>
    OperationCanceled = 21,

    /// <summary>
    /// The shard was removed, or its removal began: a write to it was not written and never will be (a retry of a message
    /// written before the seal gets its acknowledgement instead), and replicas, metadata and primary no longer change. Not
    /// retriable.
    /// </summary>
    ShardRemoved = 22,
}
