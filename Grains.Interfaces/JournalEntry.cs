namespace PR2;

/// <summary>
/// An accepted message as the journal holds it: immutable once written.
/// </summary>
/// <param name="Position">Local position in this replica's journal (contiguous from 1).</param>
/// <param name="MessageId">The message's idempotency key, unique in the journal.</param>
/// <param name="Stamp">Lamport stamp given by the shard's writer.</param>
/// <param name="OriginReplica">The replica where the entry was first written.</param>
/// <param name="OriginPosition">Its position at that replica.</param>
/// <param name="Actor">The receiving actor.</param>
/// <param name="Kind">Insert, modify or cancel.</param>
/// <param name="Version">The actor's record version this entry made.</param>
/// <param name="Body">Canonical JSON body.</param>
/// <param name="Sender">Who sent it.</param>
/// <param name="CausedBy">Stamp of the entry that caused it, when it came from another entry.</param>
/// <param name="RecordedAt">Commit-time wall clock of the writer's database, for people; order never depends on it.</param>
/// <param name="Hops">How many rule steps led to it (0 for a message from a client).</param>
[GenerateSerializer, Immutable, Alias("pr2.journal-entry.v1")]
public sealed record JournalEntry(
    [property: Id(0)] long Position,
    [property: Id(1)] Guid MessageId,
    [property: Id(2)] LamportStamp Stamp,
    [property: Id(3)] Guid OriginReplica,
    [property: Id(4)] long OriginPosition,
    [property: Id(5)] ActorRef Actor,
    [property: Id(6)] MessageKind Kind,
    [property: Id(7)] long Version,
    [property: Id(8)] string Body,
    [property: Id(9)] string Sender,
    [property: Id(10)] LamportStamp? CausedBy,
    [property: Id(11)] DateTimeOffset RecordedAt,
    [property: Id(12)] int Hops = 0);
