namespace PR2;

/// <summary>A shard to add to a running cluster (<see cref="IDirectoryGrain.AddShard"/>).</summary>
/// <param name="Shard">Its code: 1 or more, not in use.</param>
/// <param name="Connections">
/// Per replica, the configuration key holding its connection string (for example <c>Pr2:Connections:acme-a</c>, set from a
/// secret on every silo): the directory records the key, never the string, so no password reaches the journal.
/// </param>
/// <param name="AckPolicy"><c>Primary</c> (default), <c>Quorum</c> or <c>All</c>.</param>
/// <param name="Name">What the shard is (e.g. the company it holds).</param>
/// <param name="Owner">Who answers for it.</param>
/// <param name="Labels">Labels (key to value).</param>
[GenerateSerializer, Immutable, Alias("pr2.new-shard.v1")]
public sealed record NewShard(
    [property: Id(0)] int Shard,
    [property: Id(1)] IReadOnlyList<string> Connections,
    [property: Id(2)] string? AckPolicy = null,
    [property: Id(3)] string? Name = null,
    [property: Id(4)] string? Owner = null,
    [property: Id(5)] IReadOnlyDictionary<string, string>? Labels = null);
