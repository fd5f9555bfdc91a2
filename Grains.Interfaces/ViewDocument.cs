namespace PR2;

/// <summary>One document of a view kept by rules.</summary>
/// <param name="Shard">The shard it lives in (the shard whose journal the rule followed).</param>
/// <param name="View">The view's name.</param>
/// <param name="Key">The document's key within the view.</param>
/// <param name="Doc">The document, a JSON object as text.</param>
/// <param name="Rule">The rule that last wrote it.</param>
/// <param name="Position">The journal entry that last changed it.</param>
[GenerateSerializer, Immutable, Alias("pr2.view-document.v1")]
public sealed record ViewDocument(
    [property: Id(0)] int Shard,
    [property: Id(1)] string View,
    [property: Id(2)] string Key,
    [property: Id(3)] string Doc,
    [property: Id(4)] string Rule,
    [property: Id(5)] long Position);
