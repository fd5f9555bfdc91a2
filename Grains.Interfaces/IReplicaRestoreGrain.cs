namespace PR2;

/// <summary>
/// Brings one replica of a shard back from a backup (key = "shard/replica"), for <c>pr2 restore</c>. The backup goes into
/// a database of its own under a temporary name, in one transaction, and takes the replica's name only once all of it
/// is in and checked, so nothing (no silo, no anti-entropy) ever sees a half-restored replica. An interrupted restore
/// leaves the replica as it was; starting again discards the leftover.
/// </summary>
public interface IReplicaRestoreGrain : IGrainWithStringKey
{
    /// <summary>
    /// Starts a restore of <paramref name="manifest"/>. Refused (<see cref="ErrorCode.BadMessage"/>) for a backup of
    /// another cluster or shard, of a newer schema, or of an unknown format; for a replica whose database exists, unless
    /// <paramref name="replace"/>; for the database holding the cluster's membership or grain state; and always for the
    /// replica the shard's writer has open (its primary). Returns a restore id that <see cref="Write"/> and
    /// <see cref="Complete"/> take.
    /// </summary>
    Task<Guid> Begin(BackupManifest manifest, bool replace);

    /// <summary>The next bytes of table <paramref name="table"/> (tables in manifest order).</summary>
    Task Write(Guid restore, string table, byte[] data);

    /// <summary>
    /// Checks row counts and the head against the manifest, commits, and puts the restored database in place. Asked again
    /// for the same restore (its answer was lost), it answers the same.
    /// </summary>
    Task<RestoreResult> Complete(Guid restore);

    /// <summary>Discards a restore in progress (its temporary database is dropped); the replica stays as it was.</summary>
    Task Abort(Guid restore);
}
