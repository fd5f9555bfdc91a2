namespace PR2;

/// <summary>An actor type seen in the cluster, with how many of its actors are live and canceled.</summary>
[GenerateSerializer, Immutable, Alias("pr2.actor-type-count.v1")]
public sealed record ActorTypeCount(
    [property: Id(0)] string Type,
    [property: Id(1)] long Live,
    [property: Id(2)] long Canceled);
