namespace PR2;

/// <summary>One change of a record: the journal entry that made it, and the record right after it.</summary>
/// <param name="Position">The entry's position in the shard's journal (on the primary): resume after it.</param>
/// <param name="Stamp">The entry's Lamport stamp.</param>
/// <param name="Kind">insert, modify or cancel.</param>
/// <param name="Record">The record as that entry left it.</param>
/// <param name="Resume">Where to resume right after this change, also on another primary (an SSE event id).</param>
[GenerateSerializer, Immutable, Alias("pr2.record-change.v1")]
public sealed record RecordChange(
    [property: Id(0)] long Position,
    [property: Id(1)] LamportStamp Stamp,
    [property: Id(2)] MessageKind Kind,
    [property: Id(3)] ActorRecord Record,
    [property: Id(4)] WatchPosition? Resume = null);
