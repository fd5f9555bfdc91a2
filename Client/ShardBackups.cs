using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;

namespace PR2.Client;

/// <summary>
/// Backups on the client's disk: a directory holding one file per table (PostgreSQL binary COPY, as the silo streams it)
/// and <c>manifest.json</c>, written last, with each file's length and SHA-256. A directory without a manifest is an
/// unfinished backup and is never restored; a restore checks every file against the manifest before it commits.
/// </summary>
internal static class ShardBackups
{
    public const string ManifestFile = "manifest.json";

    // Chunks per Orleans message: the silo sends at most half a MiB per chunk.
    private const int ChunksPerMessage = 2;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static async Task<BackupManifest> BackupAsync(IClusterClient cluster, int shard, string directory, int? replica,
        IProgress<TransferProgress>? progress, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(directory);
        if (Directory.EnumerateFileSystemEntries(directory).Any())
        {
            throw new Pr2Exception(ErrorCode.BadMessage, $"'{directory}' is not empty: a backup goes into a new or empty directory");
        }

        var clock = Stopwatch.StartNew();
        BackupManifest? manifest = null;
        var tables = new List<BackupTable>();
        FileStream? file = null;
        IncrementalHash? hash = null;
        string? table = null;
        long bytes = 0, rowsBefore = 0, rows = 0;
        try
        {
            try
            {
                await foreach (var part in cluster.GetGrain<IShardBackupGrain>(shard).Read(replica, cancellationToken).WithBatchSize(ChunksPerMessage)
                    .WithCancellation(cancellationToken))
                {
                    if (part.Manifest is { } first)
                    {
                        manifest = first;
                        continue;
                    }

                    if (manifest is null || part.Table is null || part.Data is null)
                    {
                        throw new Pr2Exception(ErrorCode.Unavailable, "the backup stream did not begin with its manifest; retry");
                    }

                    if (part.Table != table)
                    {
                        await FinishAsync();
                        table = part.Table;
                        var entry = manifest.Tables.Single(t => t.Name == table);
                        file = new FileStream(Path.Combine(directory, Path.GetFileName(entry.File)), FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
                        hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                    }

                    await file!.WriteAsync(part.Data, cancellationToken);
                    hash!.AppendData(part.Data);
                    bytes += part.Data.Length;
                    rows = rowsBefore + part.RowsSent;
                    progress?.Report(new TransferProgress(table!, rows, manifest.Tables.Sum(t => t.Rows), bytes, 0, clock.Elapsed));
                }
            }
            catch (Exception e) when (e is not Pr2Exception && (UnavailableCluster.Is(e, cancellationToken) || e is EnumerationAbortedException))
            {
                // EnumerationAbortedException: the silo streaming it stopped, or dropped the enumeration.
                throw new Pr2Exception(ErrorCode.Unavailable, "the cluster did not answer during the backup (a silo failed or the call timed out); back up again", e);
            }

            await FinishAsync();
            if (manifest is null || tables.Count != manifest.Tables.Count)
            {
                throw new Pr2Exception(ErrorCode.Unavailable, "the backup stream ended early; back up again");
            }

            var complete = manifest with { Tables = tables };
            var staged = Path.Combine(directory, ManifestFile + ".partial");
            await File.WriteAllBytesAsync(staged, JsonSerializer.SerializeToUtf8Bytes(complete, Json), cancellationToken);
            File.Move(staged, Path.Combine(directory, ManifestFile));
            return complete;
        }
        catch
        {
            // Nothing half-written stays behind to be mistaken for a backup.
            file?.Dispose();
            foreach (var leftover in Directory.EnumerateFiles(directory))
            {
                File.Delete(leftover);
            }

            throw;
        }
        finally
        {
            hash?.Dispose();
        }

        async Task FinishAsync()
        {
            if (file is null)
            {
                return;
            }

            await file.FlushAsync(cancellationToken);
            file.Flush(flushToDisk: true);
            var entry = manifest!.Tables.Single(t => t.Name == table);
            tables.Add(entry with { Bytes = file.Length, Sha256 = Convert.ToHexStringLower(hash!.GetHashAndReset()) });
            await file.DisposeAsync();
            file = null;
            rowsBefore += entry.Rows;
        }
    }

    /// <summary>Reads and checks a backup directory's manifest (every file it names present with the length it says).</summary>
    public static async Task<BackupManifest> ReadManifestAsync(string directory, CancellationToken cancellationToken)
    {
        var path = Path.Combine(directory, ManifestFile);
        if (!File.Exists(path))
        {
            throw new Pr2Exception(ErrorCode.BadMessage, $"'{directory}' holds no {ManifestFile}: not a backup, or one that did not finish");
        }

        BackupManifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<BackupManifest>(await File.ReadAllBytesAsync(path, cancellationToken), Json);
        }
        catch (JsonException e)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, $"{path} is not a backup manifest: {e.Message}");
        }

        if (manifest?.Tables is null)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, $"{path} is not a backup manifest");
        }

        foreach (var table in manifest.Tables)
        {
            var file = Path.Combine(directory, Path.GetFileName(table.File));
            if (!File.Exists(file) || new FileInfo(file).Length != table.Bytes || table.Sha256 is null)
            {
                throw new Pr2Exception(ErrorCode.BadMessage, $"backup file {table.File} is missing or not the length the manifest says: the backup is damaged");
            }
        }

        return manifest;
    }

    public static async Task<RestoreResult> RestoreAsync(IClusterClient cluster, int shard, int replica, string directory, bool replace,
        IProgress<TransferProgress>? progress, CancellationToken cancellationToken)
    {
        var manifest = await ReadManifestAsync(directory, cancellationToken);
        var grain = cluster.GetGrain<IReplicaRestoreGrain>($"{shard}/{replica}");
        var restore = await UnavailableCluster.Answer(() => grain.Begin(manifest, replace), cancellationToken);
        var clock = Stopwatch.StartNew();
        var (totalRows, totalBytes) = (manifest.Tables.Sum(t => t.Rows), manifest.Tables.Sum(t => t.Bytes));
        long rows = 0, bytes = 0;
        try
        {
            var buffer = new byte[512 * 1024];
            foreach (var table in manifest.Tables)
            {
                await using var file = new FileStream(Path.Combine(directory, Path.GetFileName(table.File)), FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
                using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                int read;
                while ((read = await file.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken)) > 0)
                {
                    var chunk = buffer[..read];
                    hash.AppendData(chunk);
                    await UnavailableCluster.Answer(async () =>
                    {
                        await grain.Write(restore, table.Name, chunk);
                        return true;
                    }, cancellationToken);
                    bytes += read;
                    progress?.Report(new TransferProgress(table.Name, rows, totalRows, bytes, totalBytes, clock.Elapsed));
                }

                // Checked before anything commits: a damaged file never becomes a replica.
                if (!Convert.ToHexStringLower(hash.GetHashAndReset()).Equals(table.Sha256, StringComparison.OrdinalIgnoreCase))
                {
                    throw new Pr2Exception(ErrorCode.BadMessage, $"backup file {table.File} does not match its SHA-256 in the manifest: the backup is damaged");
                }

                rows += table.Rows;
                progress?.Report(new TransferProgress(table.Name, rows, totalRows, bytes, totalBytes, clock.Elapsed));
            }
        }
        catch
        {
            await AbortAsync(grain, restore);
            throw;
        }

        // Once asked to complete, never aborted: the answer may be lost while the restore went through, and a retriable
        // refusal keeps what was loaded. Asked again, the grain answers the same, or goes on with the swap.
        var unknown = false;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await UnavailableCluster.Answer(() => grain.Complete(restore), cancellationToken);
            }
            catch (Pr2Exception e) when (e.IsRetriable && attempt < CompleteAttempts)
            {
                unknown |= e.Code == ErrorCode.Unavailable;
                progress?.Report(new TransferProgress($"waiting: {e.Message}", rows, totalRows, bytes, totalBytes, clock.Elapsed));
                await Task.Delay(TimeSpan.FromSeconds(Math.Min(attempt, 10)), cancellationToken);
            }
            catch (Pr2Exception e) when (unknown && e.Code == ErrorCode.BadMessage)
            {
                // The silo that ran it is gone, or it finished and its answer was lost.
                throw new Pr2Exception(ErrorCode.Unavailable,
                    $"the restore of shard {shard} replica {replica} may or may not have completed (the silo running it did not answer): " +
                    "pr2 shards describe shows whether the replica is back; restore again (with --replace) if it is not", e);
            }
        }
    }

    // About two minutes of asking again for a restore waiting on the shard (a primary to move, entries to be copied).
    private const int CompleteAttempts = 16;

    private static async Task AbortAsync(IReplicaRestoreGrain grain, Guid restore)
    {
        try
        {
            await grain.Abort(restore).WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None);
        }
        catch (Exception e) when (e is TimeoutException or OrleansException or Pr2Exception)
        {
            // Discarded by the silo after two idle minutes anyway.
        }
    }
}
