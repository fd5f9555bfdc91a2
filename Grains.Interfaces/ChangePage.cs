namespace PR2;

/// <summary>Changes found after a position, and the position to continue after (also when nothing matched).</summary>
[GenerateSerializer, Immutable, Alias("pr2.change-page.v1")]
public sealed record ChangePage(
    [property: Id(0)] IReadOnlyList<RecordChange> Changes,
    [property: Id(1)] long NextAfter);
