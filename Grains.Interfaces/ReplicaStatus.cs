namespace PR2;

/// <summary>One replica database of a shard as seen now.</summary>
/// <param name="Index">Its index in the topology (0 = primary).</param>
/// <param name="Endpoint">host:port/database (never credentials).</param>
/// <param name="Primary">Whether new writes land here first.</param>
/// <param name="Reachable">Whether it answered.</param>
/// <param name="Head">Its last journal position (-1 when unreachable).</param>
/// <param name="Error">Why it did not answer.</param>
/// <param name="ReplicaId">Its own origin id (empty when unreachable).</param>
/// <param name="Behind">Entries it lacks compared with the union of the reachable replicas' version vectors (-1 when unreachable).</param>
/// <param name="Vector">Its version vector: origin replica id to the highest origin position held contiguously.</param>
/// <param name="OutboxPending">Rule messages in its outbox not delivered yet (-1 when unreachable).</param>
/// <param name="Parked">Entries its rules parked (a condition or action failed on them; -1 when unreachable).</param>
/// <param name="Joining">Added at runtime and still catching up: it serves no reads and counts toward no acknowledgement yet.</param>
/// <param name="Removed">Removed at runtime: nothing uses it any more (its database may be dropped).</param>
[GenerateSerializer, Immutable, Alias("pr2.replica-status.v1")]
public sealed record ReplicaStatus(
    [property: Id(0)] int Index,
    [property: Id(1)] string Endpoint,
    [property: Id(2)] bool Primary,
    [property: Id(3)] bool Reachable,
    [property: Id(4)] long Head,
    [property: Id(5)] string? Error,
    [property: Id(6)] Guid ReplicaId,
    [property: Id(7)] long Behind,
    [property: Id(8)] IReadOnlyDictionary<Guid, long>? Vector,
    [property: Id(9)] long OutboxPending = -1,
    [property: Id(10)] long Parked = -1,
    [property: Id(11)] bool Joining = false,
    [property: Id(12)] bool Removed = false);
