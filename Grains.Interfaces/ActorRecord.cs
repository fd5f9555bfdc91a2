namespace PR2;

/// <summary>
/// An actor's record: the fold of its journal entries in Lamport order.
/// </summary>
/// <param name="Actor">Whose record this is.</param>
/// <param name="Status">Missing, live or canceled.</param>
/// <param name="Version">How many entries were folded (0 when missing).</param>
/// <param name="State">The JSON state after the last insert/modify, as text; <c>null</c> when missing.</param>
/// <param name="FirstStamp">Stamp of the first entry, if any.</param>
/// <param name="LastStamp">Stamp of the last entry, if any.</param>
/// <param name="LastPosition">Journal position of the last entry (0 when missing).</param>
[GenerateSerializer, Immutable, Alias("pr2.actor-record.v1")]
public sealed record ActorRecord(
    [property: Id(0)] ActorRef Actor,
    [property: Id(1)] RecordStatus Status,
    [property: Id(2)] long Version,
    [property: Id(3)] string? State,
    [property: Id(4)] LamportStamp? FirstStamp,
    [property: Id(5)] LamportStamp? LastStamp,
    [property: Id(6)] long LastPosition);
