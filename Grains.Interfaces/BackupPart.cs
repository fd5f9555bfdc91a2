namespace PR2;

/// <summary>
/// One element of a backup as <see cref="IShardBackupGrain.Read"/> streams it: first the manifest alone, then the
/// tables' bytes in order, each chunk saying which table it belongs to and how many of its rows have been sent so far.
/// </summary>
[GenerateSerializer, Immutable, Alias("pr2.backup-part.v1")]
public sealed record BackupPart(
    [property: Id(0)] BackupManifest? Manifest,
    [property: Id(1)] string? Table,
    [property: Id(2)] byte[]? Data,
    [property: Id(3)] long RowsSent);
