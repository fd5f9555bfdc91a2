namespace PR2;

/// <summary>One table of a backup: the columns copied (in file order) and how many rows.</summary>
/// <param name="Name">The table (e.g. <c>pr2_journal</c>).</param>
/// <param name="Columns">The columns in the order the file holds them (generated columns are left out: restored, they are computed again).</param>
/// <param name="Rows">Rows copied, counted in the backup's snapshot.</param>
/// <param name="File">The file under the backup directory (PostgreSQL binary COPY format).</param>
/// <param name="Bytes">The file's length (filled in by the client that wrote it).</param>
/// <param name="Sha256">The file's SHA-256, hex (filled in by the client that wrote it), checked before a restore commits.</param>
[GenerateSerializer, Immutable, Alias("pr2.backup-table.v1")]
public sealed record BackupTable(
    [property: Id(0)] string Name,
    [property: Id(1)] IReadOnlyList<string> Columns,
    [property: Id(2)] long Rows,
    [property: Id(3)] string File,
    [property: Id(4)] long Bytes = 0,
    [property: Id(5)] string? Sha256 = null);
