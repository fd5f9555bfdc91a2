namespace PR2;

/// <summary>A record as one read saw it, and where that read was answered.</summary>
/// <param name="Record">The record (status Missing when the actor has none).</param>
/// <param name="Replica">The replica index that answered.</param>
/// <param name="Mark">The journal position the answer reflects on that replica.</param>
/// <param name="Token">What the answer reflects, as a read token: pass it (merged into the session's) to later session reads.</param>
[GenerateSerializer, Immutable, Alias("pr2.record-read.v1")]
public sealed record RecordRead(
    [property: Id(0)] ActorRecord Record,
    [property: Id(1)] int Replica,
    [property: Id(2)] long Mark,
    [property: Id(3)] ReadToken Token);
