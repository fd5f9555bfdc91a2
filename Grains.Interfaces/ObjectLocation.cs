namespace PR2;

/// <summary>One entry of the object directory: an actor id and the shard that holds it.</summary>
[GenerateSerializer, Immutable, Alias("pr2.object-location.v1")]
public sealed record ObjectLocation(
    [property: Id(0)] int Shard,
    [property: Id(1)] string ActorId,
    [property: Id(2)] RecordStatus Status,
    [property: Id(3)] long FirstPosition,
    [property: Id(4)] long LastPosition);
