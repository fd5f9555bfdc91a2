namespace PR2;

/// <summary>Where one replica's copy of a projection stands, and its last rebuild.</summary>
/// <param name="Replica">The replica's index.</param>
/// <param name="State">"live" (never rebuilt), "building" (a rebuild is folding into its shadow), "done" (the last rebuild
/// was swapped in), "canceled" (the last rebuild was canceled: the live view was kept), or "unreachable".</param>
/// <param name="Generation">How many rebuilds were started on this replica (0: none).</param>
/// <param name="Folded">Journal positions folded: the shadow's mark while building, else the live mark.</param>
/// <param name="Head">The replica's journal head when read.</param>
/// <param name="Mark">The live projection's mark (what readers see reflects the journal up to it).</param>
/// <param name="StartedAt">When the last rebuild started.</param>
/// <param name="SwappedAt">When the last rebuild was swapped in.</param>
/// <param name="SwappedPosition">The mark the rebuilt view took over at (-1 before a swap).</param>
/// <param name="Error">The last error of a rebuild in progress, or why the replica did not answer.</param>
[GenerateSerializer, Immutable, Alias("pr2.projection-replica-status.v1")]
public sealed record ProjectionReplicaStatus(
    [property: Id(0)] int Replica,
    [property: Id(1)] string State,
    [property: Id(2)] long Generation,
    [property: Id(3)] long Folded,
    [property: Id(4)] long Head,
    [property: Id(5)] long Mark,
    [property: Id(6)] DateTimeOffset? StartedAt,
    [property: Id(7)] DateTimeOffset? SwappedAt,
    [property: Id(8)] long SwappedPosition,
    [property: Id(9)] string? Error);
