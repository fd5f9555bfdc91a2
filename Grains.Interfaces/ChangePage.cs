namespace PR2;

/// <summary>
/// Changes found after a position, and where to continue (also when nothing matched): <see cref="NextAfter"/> as a
/// position on the primary read, <see cref="Next"/> as a <see cref="WatchPosition"/> that survives a change of primary.
/// <see cref="AtHead"/>: the page read up to the primary's head as it was (a watch can go live from <see cref="Next"/>).
/// </summary>
[GenerateSerializer, Immutable, Alias("pr2.change-page.v1")]
public sealed record ChangePage(
    [property: Id(0)] IReadOnlyList<RecordChange> Changes,
    [property: Id(1)] long NextAfter,
    [property: Id(2)] WatchPosition? Next = null,
    [property: Id(3)] bool AtHead = false);
