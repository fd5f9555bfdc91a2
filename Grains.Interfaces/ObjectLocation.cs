namespace PR2;

/// <summary>
/// One entry of the object directory: an actor id, the shard that holds it, and where it first appeared: the position of
/// its first insert or cancel in the journal of the replica that reported it first (positions are local to a replica).
/// </summary>
[GenerateSerializer, Immutable, Alias("pr2.object-location.v1")]
public sealed record ObjectLocation(
    [property: Id(0)] int Shard,
    [property: Id(1)] string ActorId,
    [property: Id(2)] RecordStatus Status,
    [property: Id(3)] long FirstPosition);
