namespace PR2;

/// <summary>A shard as the directory (shard 0) records it.</summary>
/// <param name="Shard">The shard code.</param>
/// <param name="Replicas">Replica endpoints (host:port/database), in topology order.</param>
/// <param name="Primary">Index of the primary replica.</param>
/// <param name="Status">The shard's recorded status: <c>up</c>, <c>removing</c> once its removal began, <c>removed</c> at its end.</param>
/// <param name="Version">Version of the <c>shard/{code}</c> record in shard 0: how often it changed.</param>
/// <param name="ReplicaStates">Per replica, as anti-entropy last recorded it: <c>up</c>, <c>down</c> or <c>catching-up</c>.</param>
/// <param name="Name">What the shard is (e.g. the company it holds), if recorded.</param>
/// <param name="Owner">Who answers for it, if recorded.</param>
/// <param name="Labels">Its labels (key to value); none when null.</param>
/// <param name="Connections">
/// Per replica, the configuration key every silo reads its connection string from (a secret's name, never the string
/// itself); none when null (a record written before they were recorded).
/// </param>
/// <param name="AckPolicy">Its ack policy (<c>Primary</c>, <c>Quorum</c> or <c>All</c>), when recorded.</param>
/// <param name="Joining">
/// Replicas (by index) added at runtime that are still catching up: anti-entropy fills them, but they serve no reads and
/// count toward no acknowledgement until admitted; none when null.
/// </param>
/// <param name="Removed">Replicas (by index) removed at runtime: they keep their index, and nothing uses them; none when null.</param>
/// <param name="Removal">Where the shard's removal stands; null while it is not being removed.</param>
[GenerateSerializer, Immutable, Alias("pr2.shard-entry.v1")]
public sealed record ShardEntry(
    [property: Id(0)] int Shard,
    [property: Id(1)] IReadOnlyList<string> Replicas,
    [property: Id(2)] int Primary,
    [property: Id(3)] string Status,
    [property: Id(4)] long Version,
    [property: Id(5)] IReadOnlyList<string> ReplicaStates,
    [property: Id(6)] string? Name = null,
    [property: Id(7)] string? Owner = null,
    [property: Id(8)] IReadOnlyDictionary<string, string>? Labels = null,
    [property: Id(9)] IReadOnlyList<string>? Connections = null,
    [property: Id(10)] string? AckPolicy = null,
    [property: Id(11)] IReadOnlyList<int>? Joining = null,
    [property: Id(12)] IReadOnlyList<int>? Removed = null,
    [property: Id(13)] ShardRemoval? Removal = null);
