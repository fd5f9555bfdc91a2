namespace PR2;

/// <summary>What <see cref="IReplicaRestoreGrain.Complete"/> did.</summary>
/// <param name="Shard">The shard.</param>
/// <param name="Replica">The replica restored.</param>
/// <param name="Position">The journal head it holds now (the backup's); anti-entropy brings it up to date from here.</param>
/// <param name="ReplicaId">Its new identity: a restored replica never writes under the identity of the one backed up.</param>
/// <param name="Replaced">True when an existing database was replaced (<c>--replace</c>).</param>
/// <param name="Warnings">What the restore could not do besides (the replica is restored): e.g. a mark in another shard it could not reset.</param>
[GenerateSerializer, Immutable, Alias("pr2.restore-result.v1")]
public sealed record RestoreResult(
    [property: Id(0)] int Shard,
    [property: Id(1)] int Replica,
    [property: Id(2)] long Position,
    [property: Id(3)] Guid ReplicaId,
    [property: Id(4)] bool Replaced,
    [property: Id(5)] IReadOnlyList<string> Warnings);
