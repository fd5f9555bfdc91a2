namespace PR2;

/// <summary>
/// What a backup of one replica holds (<c>manifest.json</c> in the backup directory): all of it read in one snapshot of
/// that replica, so the journal, the agents' marks and the views they keep agree with each other and with the head.
/// </summary>
/// <param name="Format">The backup format (1).</param>
/// <param name="Shard">The shard backed up.</param>
/// <param name="Replica">The index of the replica read.</param>
/// <param name="ReplicaId">That replica's identity (the origin of the entries first written there).</param>
/// <param name="SchemaVersion">The newest schema script applied on it (a restore needs a schema at least that new).</param>
/// <param name="Position">The journal head: entries 1 to this position are in the backup.</param>
/// <param name="Clock">The Lamport clock at the head.</param>
/// <param name="OriginPosition">How many entries were first written on that replica (its own origin's count).</param>
/// <param name="Epoch">The writer epoch (fencing term) the replica had.</param>
/// <param name="TakenAt">When the snapshot was taken (the server's clock).</param>
/// <param name="Tables">The tables copied, in restore order.</param>
/// <param name="Cluster">The cluster's service id: a backup is restored into the cluster it was taken from only.</param>
[GenerateSerializer, Immutable, Alias("pr2.backup-manifest.v1")]
public sealed record BackupManifest(
    [property: Id(0)] int Format,
    [property: Id(1)] int Shard,
    [property: Id(2)] int Replica,
    [property: Id(3)] Guid ReplicaId,
    [property: Id(4)] int SchemaVersion,
    [property: Id(5)] long Position,
    [property: Id(6)] long Clock,
    [property: Id(7)] long OriginPosition,
    [property: Id(8)] long Epoch,
    [property: Id(9)] DateTimeOffset TakenAt,
    [property: Id(10)] IReadOnlyList<BackupTable> Tables,
    [property: Id(11)] string Cluster)
{
    /// <summary>The format this version of PR2 writes and reads.</summary>
    public const int CurrentFormat = 1;
}
