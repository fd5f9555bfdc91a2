namespace PR2;

/// <summary>One page of a records query, all read in one snapshot of one replica.</summary>
/// <param name="Records">The records, by actor id.</param>
/// <param name="NextCursor">Pass it to get the next page; null on the last page.</param>
/// <param name="Replica">The replica index that answered.</param>
/// <param name="Mark">The journal position the records view reflected in that snapshot.</param>
/// <param name="Token">What the page reflects, as a read token (see <see cref="RecordRead.Token"/>).</param>
[GenerateSerializer, Immutable, Alias("pr2.record-page.v1")]
public sealed record RecordPage(
    [property: Id(0)] IReadOnlyList<ActorRecord> Records,
    [property: Id(1)] string? NextCursor,
    [property: Id(2)] int Replica,
    [property: Id(3)] long Mark,
    [property: Id(4)] ReadToken Token);
