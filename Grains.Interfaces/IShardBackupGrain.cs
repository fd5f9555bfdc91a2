namespace PR2;

/// <summary>Consistent copies of one replica of a shard (key = shard code), for <c>pr2 backup</c>.</summary>
public interface IShardBackupGrain : IGrainWithIntegerKey
{
    /// <summary>
    /// Reads replica <paramref name="replica"/> (the primary when null) in one snapshot (one repeatable-read transaction)
    /// and streams it: the <see cref="BackupManifest"/> first, then each table's rows in PostgreSQL's binary COPY format.
    /// The writer keeps writing meanwhile; the backup holds what was committed when the snapshot began.
    /// </summary>
    IAsyncEnumerable<BackupPart> Read(int? replica, CancellationToken cancellationToken = default);
}
