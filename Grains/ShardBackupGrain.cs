using System.Data;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Options;
using Npgsql;
using Orleans.Configuration;
using Orleans.Concurrency;
using PR2.Grains.Backup;
using PR2.Grains.Records;
using PR2.Grains.Storage;

namespace PR2.Grains;

/// <summary>
/// Streams a consistent copy of one replica (see <see cref="IShardBackupGrain"/>): one repeatable-read, read-only
/// transaction on a connection of its own, so the copy is the replica as it was at one instant while the writer goes on.
/// Reentrant: backups of several replicas may run at once, each in its own transaction.
/// </summary>
[Reentrant]
public sealed class ShardBackupGrain(ShardRegistry shards, TopologyFollower topology, IOptions<ClusterOptions> cluster) : Grain, IShardBackupGrain
{
    // Chunks of at most this many bytes: a few per Orleans message keeps messages small.
    private const int ChunkBytes = 512 * 1024;

    private static readonly TimeSpan PrimaryTimeout = TimeSpan.FromSeconds(5);

    public async IAsyncEnumerable<BackupPart> Read(int? replica, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var code = (int)this.GetPrimaryKeyLong();
        // A streamed answer's failures pass no grain call filter: every database call here is guarded, these two included
        // (learning a shard can apply its schema; the primary is read from the replicas).
        if (!await BackupConnections.GuardAsync($"backup of shard {code}", () => topology.KnowsAsync(code)))
        {
            throw new Pr2Exception(ErrorCode.UnknownShard, $"shard {code} is not in the directory");
        }

        // A backup's snapshot holds a session on the database: in a shard being removed it would keep it from being dropped.
        await DirectoryGrain.RefuseIfBeingRemovedAsync(GrainFactory, code, "it is no longer backed up (back it up before removing it)");
        var set = shards.Get(code);
        var index = replica ?? await BackupConnections.GuardAsync($"backup of shard {code}", () => CurrentPrimary.AskAsync(GrainFactory, set, PrimaryTimeout));
        if (index < 0 || index >= set.Replicas.Count || set.IsRemoved(index))
        {
            throw new Pr2Exception(ErrorCode.BadMessage, $"shard {code} has replicas 0 to {set.Replicas.Count - 1} (removed ones not backed up), not {index}");
        }

        var what = $"backup of shard {code} replica {index}";
        await using var connection = await BackupConnections.GuardAsync(what,
            () => BackupConnections.OpenAsync(BackupConnections.For(set.ConnectionStrings[index]), cancellationToken));
        await using var transaction = await BackupConnections.GuardAsync(what, async () =>
        {
            var begun = await connection.BeginTransactionAsync(IsolationLevel.RepeatableRead, cancellationToken);
            await using var readOnly = new NpgsqlCommand("set transaction read only", connection, begun);
            await readOnly.ExecuteNonQueryAsync(cancellationToken);
            // Before the snapshot: a records rebuild swapping its table in now is either wholly in the copy or not at all.
            await RecordStore.LockLiveAsync(connection, begun, cancellationToken);
            return begun;
        });
        // A client that stops pulling (gone, or cancelled) may never dispose this enumeration: its cancellation closes the
        // connection, so no snapshot stays open on the replica holding back its vacuum.
        var (configured, pid) = (set.ConnectionStrings[index], connection.ProcessID);
        await using var abandon = cancellationToken.Register(() => _ = EndSessionAsync(configured, pid));
        var manifest = await BackupConnections.GuardAsync(what, () => ReadManifestAsync(connection, transaction, code, index, cluster.Value.ServiceId, cancellationToken));
        yield return new BackupPart(manifest, null, null, 0);

        foreach (var table in manifest.Tables)
        {
            var copy = await BackupConnections.GuardAsync(what, async () => await connection.BeginRawBinaryCopyAsync(
                $"copy {table.Name} ({BackupTables.ColumnList(table.Columns)}) to stdout (format binary)", cancellationToken));
            await using (copy)
            {
                var counter = new CopyTupleCounter();
                while (true)
                {
                    var chunk = await BackupConnections.GuardAsync(what, () => ReadChunkAsync(copy, cancellationToken));
                    if (chunk.Length == 0)
                    {
                        break;
                    }

                    counter.Feed(chunk);
                    yield return new BackupPart(null, table.Name, chunk, counter.Rows);
                }

                // The same snapshot counted them: anything else is a broken copy, never a backup.
                if (!counter.Complete || counter.Rows != table.Rows)
                {
                    throw new Pr2Exception(ErrorCode.ShardUnavailable,
                        $"{what}: table {table.Name} copied {counter.Rows} rows{(counter.Complete ? "" : " (cut short)")}, the snapshot counted {table.Rows}; retry");
                }
            }
        }

        await BackupConnections.GuardAsync(what, async () =>
        {
            await transaction.CommitAsync(cancellationToken);
            return true;
        });
    }

    // Ends the backup's session on the server from a connection of its own (the iterator's may be in use).
    private static async Task EndSessionAsync(string configured, int pid)
    {
        try
        {
            await using var connection = await BackupConnections.OpenAsync(BackupConnections.For(configured), CancellationToken.None);
            await using var command = new NpgsqlCommand("select pg_terminate_backend($1)", connection);
            command.Parameters.Add(new() { Value = pid });
            await command.ExecuteNonQueryAsync();
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or IOException)
        {
            // The server is gone: so is the session.
        }
    }

    private static async Task<BackupManifest> ReadManifestAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, int code, int index,
        string serviceId, CancellationToken cancellationToken)
    {
        await using var head = new NpgsqlCommand("""
            select r.shard, r.replica_id, h.position, h.clock, h.origin_position, h.epoch,
                   (select coalesce(max(version), 0) from pr2_schema_version), now()
            from pr2_replica r, pr2_writer_head h
            """, connection, transaction);
        await using var reader = await head.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            throw new Pr2Exception(ErrorCode.ShardUnavailable, $"shard {code} replica {index} has no schema yet (its server came back empty?); retry later");
        }

        var (shard, replicaId, position, clock, originPosition, epoch, schema, now) = (reader.GetInt32(0), reader.GetGuid(1), reader.GetInt64(2),
            reader.GetInt64(3), reader.GetInt64(4), reader.GetInt64(5), reader.GetInt32(6), reader.GetFieldValue<DateTimeOffset>(7));
        await reader.CloseAsync();
        if (shard != code)
        {
            throw new Pr2Exception(ErrorCode.ShardUnavailable, $"replica {index} of shard {code} is a database of shard {shard}: check the topology");
        }

        var tables = new List<BackupTable>();
        foreach (var name in await BackupTables.PresentAsync(connection, cancellationToken))
        {
            await using var count = new NpgsqlCommand($"select count(*) from {name}", connection, transaction);
            var rows = (long)(await count.ExecuteScalarAsync(cancellationToken))!;
            tables.Add(new BackupTable(name, await BackupTables.ColumnsAsync(connection, name, cancellationToken), rows, name + ".pgcopy"));
        }

        return new BackupManifest(BackupManifest.CurrentFormat, code, index, replicaId, schema, position, clock, originPosition, epoch, now, tables, serviceId);
    }

    // Fills a chunk as far as the copy gives (an empty one at its end).
    private static async Task<byte[]> ReadChunkAsync(Stream copy, CancellationToken cancellationToken)
    {
        var buffer = new byte[ChunkBytes];
        var filled = 0;
        while (filled < buffer.Length)
        {
            var read = await copy.ReadAsync(buffer.AsMemory(filled), cancellationToken);
            if (read == 0)
            {
                break;
            }

            filled += read;
        }

        return filled == buffer.Length ? buffer : buffer[..filled];
    }
}
