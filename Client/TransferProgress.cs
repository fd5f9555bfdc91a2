namespace PR2.Client;

/// <summary>How far a backup or restore has come, reported as it goes (e.g. for a progress bar).</summary>
/// <param name="Table">The table being copied.</param>
/// <param name="Rows">Rows copied so far, all tables (a backup counts them as they come; a restore knows them per table once sent).</param>
/// <param name="TotalRows">Rows in all, as the manifest says.</param>
/// <param name="Bytes">Bytes copied so far.</param>
/// <param name="TotalBytes">Bytes in all (0 while unknown: a backup learns it only at its end).</param>
/// <param name="Elapsed">Time since the start.</param>
public sealed record TransferProgress(string Table, long Rows, long TotalRows, long Bytes, long TotalBytes, TimeSpan Elapsed);
