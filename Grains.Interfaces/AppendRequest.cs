namespace PR2;

/// <summary>
/// What an actor asks its shard's journal writer to append: a validated message plus the version it
/// will give the record (in an atomic batch, 0: the writer gives the next version). <see cref="ContentHash"/> identifies the content for idempotency checks.
/// </summary>
[GenerateSerializer, Immutable, Alias("pr2.append-request.v1")]
public sealed record AppendRequest(
    [property: Id(0)] Message Message,
    [property: Id(1)] string CanonicalBody,
    [property: Id(2)] byte[] ContentHash,
    [property: Id(3)] long Version);
