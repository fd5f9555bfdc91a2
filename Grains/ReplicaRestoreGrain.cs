using System.Globalization;
using Microsoft.Extensions.Logging;
using Npgsql;
using PR2.Grains.Backup;
using PR2.Grains.Storage;

namespace PR2.Grains;

/// <summary>
/// Restores one replica from a backup (see <see cref="IReplicaRestoreGrain"/>). The backup is loaded into a database
/// named after the replica's with a <c>_pr2_restore</c> suffix, created and migrated like a new replica (so it gets an
/// identity of its own), in one transaction; only when every table holds the rows the manifest says and the head is
/// set does the database take the replica's name (dropping the old one with <c>--replace</c>). The head is the backup's
/// with <c>primary_term = -1</c> (never a primary until a writer opens on it) and the backed-up replica's own entries
/// counted as a foreign origin, so anti-entropy sends only what came after the backup.
/// One restore per replica at a time; a new one discards an unfinished one, as does two minutes without progress.
/// </summary>
public sealed class ReplicaRestoreGrain(ShardRegistry shards, TopologyFollower topology, SchemaMigrator migrator, ILogger<ReplicaRestoreGrain> logger)
    : Grain, IReplicaRestoreGrain
{
    private const string Suffix = "_pr2_restore";
    private const int MaxDatabaseName = 63;

    private static readonly TimeSpan Idle = TimeSpan.FromMinutes(2);
    private static readonly TimeSpan PrimaryTimeout = TimeSpan.FromSeconds(5);

    private Restore? _restore;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        this.RegisterGrainTimer(async _ =>
        {
            if (_restore is { } restore && DateTime.UtcNow - restore.LastActivity > Idle)
            {
                Log.RestoreAbandoned(logger, restore.Shard, restore.Replica, Idle.TotalSeconds);
                await DiscardAsync(restore);
            }
        }, new GrainTimerCreationOptions(TimeSpan.FromSeconds(15), TimeSpan.FromSeconds(15)) { KeepAlive = true });
        return Task.CompletedTask;
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (_restore is { } restore)
        {
            await DiscardAsync(restore);
        }
    }

    public async Task<Guid> Begin(BackupManifest manifest, bool replace)
    {
        var (code, replica) = ParseKey();
        if (!await topology.KnowsAsync(code))
        {
            throw new Pr2Exception(ErrorCode.UnknownShard, $"shard {code} is not in the directory");
        }

        var set = shards.Get(code);
        if (replica < 0 || replica >= set.Replicas.Count)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, $"shard {code} has replicas 0 to {set.Replicas.Count - 1}, not {replica}");
        }

        Validate(manifest, code);
        if (_restore is { } earlier)
        {
            await DiscardAsync(earlier);
        }

        var configured = set.ConnectionStrings[replica];
        var target = new NpgsqlConnectionStringBuilder(configured).Database
            ?? throw new Pr2Exception(ErrorCode.BadMessage, $"shard {code} replica {replica}: its connection string names no database");
        var staging = (target.Length + Suffix.Length <= MaxDatabaseName ? target : target[..(MaxDatabaseName - Suffix.Length)]) + Suffix;
        var maintenance = BackupConnections.For(configured, "postgres");
        var what = $"restore of shard {code} replica {replica}";

        var exists = await BackupConnections.GuardAsync(what, () => DatabaseExistsAsync(maintenance, target));
        if (exists && !replace)
        {
            throw new Pr2Exception(ErrorCode.BadMessage,
                $"shard {code} replica {replica}: database '{target}' exists; restore replaces a replica only when asked (--replace), " +
                "and a live replica is filled by anti-entropy anyway");
        }

        if (exists && await CurrentPrimary.AskAsync(GrainFactory, set, PrimaryTimeout) == replica)
        {
            throw new Pr2Exception(ErrorCode.BadMessage,
                $"shard {code} replica {replica} is the shard's primary: move the primary first (pr2 replicas promote {code} <other replica>)");
        }

        var restore = new Restore(Guid.NewGuid(), code, replica, manifest, target, staging, maintenance, exists);
        await BackupConnections.GuardAsync(what, async () =>
        {
            await ExecuteAsync(maintenance, $"drop database if exists {BackupConnections.Quote(staging)} with (force)");
            await ExecuteAsync(maintenance, $"create database {BackupConnections.Quote(staging)}");
            // As a new replica would be: the schema, and an identity of its own.
            await migrator.PrepareReplicaAsync(code, replica, BackupConnections.For(configured, staging), CancellationToken.None);
            restore.Connection = await BackupConnections.OpenAsync(BackupConnections.For(configured, staging), CancellationToken.None);
            restore.Transaction = await restore.Connection.BeginTransactionAsync();
            return true;
        });
        _restore = restore;
        Log.RestoreBegun(logger, code, replica, manifest.Position, staging);
        return restore.Id;
    }

    public async Task Write(Guid restore, string table, byte[] data)
    {
        var current = Current(restore);
        current.LastActivity = DateTime.UtcNow;
        try
        {
            if (current.Table != table)
            {
                await FinishTableAsync(current);
                var next = current.Manifest.Tables.Select(t => t.Name).ToList().IndexOf(table);
                if (next <= current.TableIndex)
                {
                    throw new Pr2Exception(ErrorCode.BadMessage, $"table {table} is not the next of the backup (tables come in manifest order)");
                }

                current.TableIndex = next;
                current.Table = table;
                var columns = BackupTables.ColumnList(current.Manifest.Tables[next].Columns);
                current.Copy = await current.Connection!.BeginRawBinaryCopyAsync($"copy {table} ({columns}) from stdin (format binary)");
            }

            await current.Copy!.WriteAsync(data);
        }
        catch (Exception e) when (e is not Pr2Exception)
        {
            await DiscardAsync(current);
            throw Refusal(current, e);
        }
        catch
        {
            await DiscardAsync(current);
            throw;
        }
    }

    public async Task<RestoreResult> Complete(Guid restore)
    {
        var current = Current(restore);
        try
        {
            await FinishTableAsync(current);
            await CheckAsync(current);
            var replicaId = await SetHeadAsync(current);
            await current.Transaction!.CommitAsync();
            await current.Connection!.DisposeAsync();
            current.Connection = null;

            if (current.Replacing)
            {
                await ExecuteAsync(current.Maintenance, $"drop database if exists {BackupConnections.Quote(current.Target)} with (force)");
            }

            await ExecuteAsync(current.Maintenance, $"alter database {BackupConnections.Quote(current.Staging)} rename to {BackupConnections.Quote(current.Target)}");
            _restore = null;
            Log.RestoreCompleted(logger, current.Shard, current.Replica, current.Manifest.Position, replicaId);
            return new RestoreResult(current.Shard, current.Replica, current.Manifest.Position, replicaId, current.Replacing);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.DuplicateDatabase)
        {
            await DiscardAsync(current);
            throw new Pr2Exception(ErrorCode.BadMessage,
                $"shard {current.Shard} replica {current.Replica}: database '{current.Target}' was created meanwhile (a silo starting?); restore again with --replace");
        }
        catch (Exception e) when (e is not Pr2Exception)
        {
            await DiscardAsync(current);
            throw Refusal(current, e);
        }
        catch
        {
            await DiscardAsync(current);
            throw;
        }
    }

    public async Task Abort(Guid restore)
    {
        if (_restore is { } current && current.Id == restore)
        {
            await DiscardAsync(current);
        }
    }

    private static void Validate(BackupManifest manifest, int code)
    {
        var problem = manifest switch
        {
            { Format: not BackupManifest.CurrentFormat } => $"backup format {manifest.Format} is not one this PR2 reads ({BackupManifest.CurrentFormat})",
            _ when manifest.Shard != code => $"the backup is of shard {manifest.Shard}, not of shard {code}",
            _ when manifest.SchemaVersion > SchemaScript.LoadEmbedded()[^1].Version =>
                $"the backup has schema version {manifest.SchemaVersion}, newer than this PR2's ({SchemaScript.LoadEmbedded()[^1].Version}): upgrade first",
            _ when manifest.Position < 0 || manifest.Clock < 0 || manifest.OriginPosition < 0 || manifest.OriginPosition > manifest.Position =>
                "the backup's head is not a possible one",
            _ when manifest.Tables.Any(t => !BackupTables.IsCopied(t.Name) || t.Rows < 0 || t.Columns.Count == 0) =>
                $"the backup names tables PR2 does not restore: {string.Join(", ", manifest.Tables.Where(t => !BackupTables.IsCopied(t.Name)).Select(t => t.Name))}",
            _ when manifest.Tables.Select(t => t.Name).Distinct().Count() != manifest.Tables.Count => "the backup names a table twice",
            _ when !manifest.Tables.Any(t => t.Name == "pr2_journal") => "the backup has no journal",
            _ => null,
        };
        if (problem is not null)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, problem);
        }
    }

    // Rows as the manifest says, and the journal exactly positions 1 to the head.
    private static async Task CheckAsync(Restore restore)
    {
        foreach (var table in restore.Manifest.Tables)
        {
            await using var counting = new NpgsqlCommand($"select count(*) from {table.Name}", restore.Connection, restore.Transaction);
            var rows = (long)(await counting.ExecuteScalarAsync())!;
            if (rows != table.Rows)
            {
                throw new Pr2Exception(ErrorCode.BadMessage, $"table {table.Name} holds {rows} rows after loading, the backup says {table.Rows}: the backup is damaged");
            }
        }

        await using var journal = new NpgsqlCommand("select count(*), coalesce(min(position), 0), coalesce(max(position), 0) from pr2_journal",
            restore.Connection, restore.Transaction);
        await using var reader = await journal.ExecuteReaderAsync();
        await reader.ReadAsync();
        var (count, first, last) = (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2));
        var head = restore.Manifest.Position;
        if (count != head || last != head || (head > 0 && first != 1))
        {
            throw new Pr2Exception(ErrorCode.BadMessage,
                $"the journal holds {count} entries at positions {first} to {last}, the backup's head is {head}: the backup is damaged");
        }
    }

    private static async Task<Guid> SetHeadAsync(Restore restore)
    {
        var manifest = restore.Manifest;
        await using var batch = new NpgsqlBatch(restore.Connection, restore.Transaction)
        {
            BatchCommands =
            {
                new("update pr2_writer_head set epoch = $1, position = $2, clock = $3, origin_position = 0, primary_term = -1, updated_at = now()")
                {
                    Parameters = { new() { Value = manifest.Epoch }, new() { Value = manifest.Position }, new() { Value = manifest.Clock } },
                },
                // The backed-up replica's own entries are all here: counted for that origin, anti-entropy does not send them again.
                new("""
                    insert into pr2_origin_vector (origin_replica, position) values ($1, $2)
                    on conflict (origin_replica) do update set position = greatest(pr2_origin_vector.position, excluded.position), updated_at = now()
                    """)
                {
                    Parameters = { new() { Value = manifest.ReplicaId }, new() { Value = manifest.OriginPosition } },
                },
                new("select replica_id from pr2_replica"),
            },
        };
        return (Guid)(await batch.ExecuteScalarAsync())!;
    }

    private static async Task FinishTableAsync(Restore restore)
    {
        if (restore.Copy is { } copy)
        {
            restore.Copy = null;
            await copy.DisposeAsync(); // ends the COPY: the server checks the stream and its rows here
        }
    }

    private async Task DiscardAsync(Restore restore)
    {
        if (ReferenceEquals(_restore, restore))
        {
            _restore = null;
        }

        try
        {
            if (restore.Copy is { } copy)
            {
                restore.Copy = null;
                await copy.CancelAsync();
            }
        }
        catch (Exception e) when (e is NpgsqlException or IOException or InvalidOperationException)
        {
            // The connection goes next anyway.
        }

        if (restore.Connection is { } connection)
        {
            restore.Connection = null;
            await connection.DisposeAsync();
        }

        try
        {
            await ExecuteAsync(restore.Maintenance, $"drop database if exists {BackupConnections.Quote(restore.Staging)} with (force)");
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or IOException)
        {
            // Its server does not answer: the next restore of this replica drops the leftover.
            Log.RestoreLeftover(logger, restore.Staging, e.GetBaseException().Message);
        }
    }

    private Restore Current(Guid restore) =>
        _restore is { } current && current.Id == restore
            ? current
            : throw new Pr2Exception(ErrorCode.BadMessage, $"restore {restore} is not in progress here (finished, discarded after {Idle.TotalMinutes:0} minutes idle, or replaced by a newer one); start again");

    private static Pr2Exception Refusal(Restore restore, Exception e) => e switch
    {
        PostgresException { SqlState: var state } p when !p.IsTransient && state is not PostgresErrorCodes.AdminShutdown and not PostgresErrorCodes.CannotConnectNow =>
            new Pr2Exception(ErrorCode.BadMessage, $"restore of shard {restore.Shard} replica {restore.Replica}: the server refused the backup's data ({p.MessageText}): the backup is damaged or not PR2's"),
        _ => new Pr2Exception(ErrorCode.ShardUnavailable, $"restore of shard {restore.Shard} replica {restore.Replica}: {e.GetBaseException().Message}; restore again"),
    };

    private (int Shard, int Replica) ParseKey()
    {
        var parts = this.GetPrimaryKeyString().Split('/');
        return parts.Length == 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var shard)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var replica)
            ? (shard, replica)
            : throw new Pr2Exception(ErrorCode.BadMessage, $"a restore is keyed \"shard/replica\", not \"{this.GetPrimaryKeyString()}\"");
    }

    private static async Task<bool> DatabaseExistsAsync(string maintenance, string database)
    {
        await using var connection = await BackupConnections.OpenAsync(maintenance, CancellationToken.None);
        await using var command = new NpgsqlCommand("select exists (select 1 from pg_database where datname = $1)", connection);
        command.Parameters.Add(new() { Value = database });
        return (bool)(await command.ExecuteScalarAsync())!;
    }

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = await BackupConnections.OpenAsync(connectionString, CancellationToken.None);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private sealed class Restore(Guid id, int shard, int replica, BackupManifest manifest, string target, string staging, string maintenance, bool replacing)
    {
        public Guid Id { get; } = id;
        public int Shard { get; } = shard;
        public int Replica { get; } = replica;
        public BackupManifest Manifest { get; } = manifest;
        public string Target { get; } = target;
        public string Staging { get; } = staging;
        public string Maintenance { get; } = maintenance;
        public bool Replacing { get; } = replacing;
        public NpgsqlConnection? Connection { get; set; }
        public NpgsqlTransaction? Transaction { get; set; }
        public NpgsqlRawCopyStream? Copy { get; set; }
        public string? Table { get; set; }
        public int TableIndex { get; set; } = -1;
        public DateTime LastActivity { get; set; } = DateTime.UtcNow;
    }
}
