using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Orleans.Configuration;
using PR2.Grains.Agents;
using PR2.Grains.Backup;
using PR2.Grains.Replication;
using PR2.Grains.Storage;

namespace PR2.Grains;

/// <summary>
/// Restores one replica from a backup (see <see cref="IReplicaRestoreGrain"/>). The backup is loaded into a database of
/// its own (the replica's name, a hash of it and <c>_pr2_restore</c>), created and migrated like a new replica (so it gets
/// an identity of its own), in one transaction; only when every table holds the rows the manifest says and the head is
/// set does the database take the replica's name, in one transaction with the old one's move aside under
/// <c>--replace</c>. The head is the backup's, with an epoch no lower than any other replica's (a fence is never undone)
/// and <c>primary_term = -1</c> (never a primary until a writer opens on it); the backed-up replica's own entries are
/// counted as a foreign origin, so anti-entropy sends only what came after the backup. Marks kept in another shard for
/// this replica's journal (the object directory's) are moved back to the restored head.
/// One restore per replica at a time; a new one discards an unfinished one, as does two minutes without progress.
/// </summary>
public sealed class ReplicaRestoreGrain(ShardRegistry shards, TopologyFollower topology, SchemaMigrator migrator, AgentCatalog agents,
    IOptions<ClusterOptions> cluster, ILogger<ReplicaRestoreGrain> logger) : Grain, IReplicaRestoreGrain
{
    private const int MaxDatabaseName = 63;

    private static readonly TimeSpan Idle = TimeSpan.FromMinutes(2);
    private static readonly TimeSpan PrimaryTimeout = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan SwapTimeout = TimeSpan.FromSeconds(10);

    private Restore? _restore;
    private (Guid Id, RestoreResult Result)? _finished;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        this.RegisterGrainTimer(async _ =>
        {
            if (_restore is { } restore && DateTime.UtcNow - restore.LastActivity > Idle)
            {
                Log.RestoreAbandoned(logger, restore.Shard, restore.Replica, Idle.TotalSeconds);
                await DiscardAsync(restore);
            }
        }, new GrainTimerCreationOptions(TimeSpan.FromSeconds(15), TimeSpan.FromSeconds(15)));
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
        if (replica < 0 || replica >= set.Replicas.Count || set.IsRemoved(replica))
        {
            throw new Pr2Exception(ErrorCode.BadMessage, $"shard {code} has replicas 0 to {set.Replicas.Count - 1} (removed ones not restored), not {replica}");
        }

        // A restored replica comes back unretired: in a shard being removed, a writer could open there again.
        await DirectoryGrain.RefuseIfBeingRemovedAsync(GrainFactory, code, "its replicas are no longer restored");

        Validate(manifest, code, cluster.Value.ServiceId);
        if (_restore is { } earlier)
        {
            await DiscardAsync(earlier);
        }

        var configured = set.ConnectionStrings[replica];
        var target = new NpgsqlConnectionStringBuilder(configured).Database
            ?? throw new Pr2Exception(ErrorCode.BadMessage, $"shard {code} replica {replica}: its connection string names no database");
        var what = $"restore of shard {code} replica {replica}";
        var restore = new Restore(Guid.NewGuid(), code, replica, manifest, configured, target, replace);
        restore.Replacing = await BackupConnections.GuardAsync(what, () => DatabaseExistsAsync(restore.Maintenance, target));
        if (restore.Replacing && !replace)
        {
            throw new Pr2Exception(ErrorCode.BadMessage,
                $"shard {code} replica {replica}: database '{target}' exists; restore replaces a replica only when asked (--replace), " +
                "and a live replica is filled by anti-entropy anyway");
        }

        if (restore.Replacing)
        {
            await RefuseThePrimaryAsync(restore, set);
        }
        else
        {
            await ReleaseTheLostAsync(restore, set);
        }

        if (restore.Replacing && await RuntimeStateAsync(restore.Configured) is { } runtime)
        {
            throw new Pr2Exception(ErrorCode.BadMessage,
                $"shard {code} replica {replica}: database '{target}' also holds the cluster's {runtime}; replacing it would take that from the " +
                "running cluster (restore it only after its server was lost)");
        }

        await BackupConnections.GuardAsync(what, async () =>
        {
            // Leftovers of an earlier restore of this replica that did not finish its cleanup (a silo died): the replica's
            // database closed to connections mid-swap, the temporary and the replaced databases.
            await ExecuteAsync(restore.Maintenance,
                $"do $$ begin if exists (select 1 from pg_database where datname = '{restore.Target.Replace("'", "''", StringComparison.Ordinal)}' and not datallowconn) " +
                $"then alter database {BackupConnections.Quote(restore.Target)} allow_connections true; end if; end $$");
            await ExecuteAsync(restore.Maintenance, $"drop database if exists {BackupConnections.Quote(restore.Staging)} with (force)");
            await ExecuteAsync(restore.Maintenance, $"drop database if exists {BackupConnections.Quote(restore.Aside)} with (force)");
            await ExecuteAsync(restore.Maintenance, $"create database {BackupConnections.Quote(restore.Staging)}");
            // As a new replica would be: the schema, and an identity of its own.
            await migrator.PrepareReplicaAsync(code, replica, BackupConnections.For(configured, restore.Staging), CancellationToken.None);
            restore.Connection = await BackupConnections.OpenAsync(BackupConnections.For(configured, restore.Staging), CancellationToken.None);
            restore.Transaction = await restore.Connection.BeginTransactionAsync();
            return true;
        });
        _restore = restore;
        try
        {
            await MatchSchemaAsync(restore);
        }
        catch
        {
            await DiscardAsync(restore);
            throw;
        }

        Log.RestoreBegun(logger, code, replica, manifest.Position, restore.Staging);
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
        if (_finished is { } finished && finished.Id == restore)
        {
            return finished.Result;
        }

        var current = Current(restore);
        current.LastActivity = DateTime.UtcNow;
        try
        {
            if (current.ReplicaId is null)
            {
                await FinishTableAsync(current);
                await CheckAsync(current);
                await CheckOriginsAsync(current);
                var replicaId = await SetHeadAsync(current, Math.Max(current.Manifest.Epoch, await OtherEpochsAsync(current)));
                await current.Transaction!.CommitAsync();
                await current.Connection!.DisposeAsync();
                current.Connection = null;
                current.ReplicaId = replicaId; // committed: from here on kept across retriable refusals
            }

            await SwapAsync(current);
        }
        catch (Exception e) when (current.ReplicaId is not null && (e is Pr2Exception { IsRetriable: true } || IsTransient(e)))
        {
            // Loaded and committed: kept, so that asking again (once the replica can be replaced, or after a lost answer:
            // the swap may have gone through) does not send it all again.
            throw e as Pr2Exception ?? new Pr2Exception(ErrorCode.ShardUnavailable,
                $"restore of shard {current.Shard} replica {current.Replica}: {DatabaseFailure.Describe(e)} while putting it in place; complete it again");
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

        _restore = null;
        var warnings = await ResetMarksElsewhereAsync(current);
        warnings.AddRange(await ForgetLostAsync(current));
        var result = new RestoreResult(current.Shard, current.Replica, current.Manifest.Position, current.ReplicaId.Value, current.Replacing, warnings);
        _finished = (current.Id, result);
        Log.RestoreCompleted(logger, current.Shard, current.Replica, current.Manifest.Position, current.ReplicaId.Value);
        return result;
    }

    public async Task Abort(Guid restore)
    {
        if (_restore is { } current && current.Id == restore)
        {
            await DiscardAsync(current);
        }
    }

    private static void Validate(BackupManifest manifest, int code, string serviceId)
    {
        var latest = SchemaScript.LoadEmbedded()[^1].Version;
        var problem = manifest switch
        {
            { Format: not BackupManifest.CurrentFormat } => $"backup format {manifest.Format} is not one this PR2 reads ({BackupManifest.CurrentFormat})",
            { Tables: null } or { Cluster: null } => "the backup's manifest is incomplete",
            _ when manifest.Cluster != serviceId => $"the backup is of cluster '{manifest.Cluster}', not of this one ('{serviceId}')",
            _ when manifest.Shard != code => $"the backup is of shard {manifest.Shard}, not of shard {code}",
            _ when manifest.SchemaVersion > latest => $"the backup has schema version {manifest.SchemaVersion}, newer than this PR2's ({latest}): upgrade first",
            _ when manifest.Position < 0 || manifest.Clock < 0 || manifest.Epoch < 0 || manifest.OriginPosition < 0
                || manifest.OriginPosition > manifest.Position => "the backup's head is not a possible one",
            _ when manifest.Tables.Any(t => t is null || t.Name is null || t.Columns is null || t.Columns.Count == 0 || t.Rows < 0) => "the backup's manifest is incomplete",
            _ when manifest.Tables.FirstOrDefault(t => !BackupTables.IsCopied(t.Name)) is { } foreign => $"the backup names a table PR2 does not restore: {foreign.Name}",
            _ when manifest.Tables.Select(t => t.Name).Distinct().Count() != manifest.Tables.Count => "the backup names a table twice",
            _ => null,
        };
        if (problem is not null)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, problem);
        }
    }

    // The backup must hold exactly the tables a replica of this shard has, each with columns the schema has.
    private static async Task MatchSchemaAsync(Restore restore)
    {
        var present = await BackupTables.PresentAsync(restore.Connection!, CancellationToken.None);
        var latest = SchemaScript.LoadEmbedded()[^1].Version;
        // A backup of the current schema holds every table; one of an older schema may lack tables added since.
        var backedUp = restore.Manifest.Tables.Select(t => t.Name).ToList();
        if (restore.Manifest.SchemaVersion == latest ? !present.SequenceEqual(backedUp) : backedUp.Except(present).Any() || !backedUp.Contains("pr2_journal"))
        {
            throw new Pr2Exception(ErrorCode.BadMessage,
                $"the backup holds tables {string.Join(", ", restore.Manifest.Tables.Select(t => t.Name))}; a replica of shard {restore.Shard} has " +
                $"{string.Join(", ", present)}: the backup is damaged or not of this shard");
        }

        foreach (var table in restore.Manifest.Tables)
        {
            var columns = await BackupTables.ColumnsAsync(restore.Connection!, table.Name, CancellationToken.None);
            var unknown = table.Columns.Except(columns).ToList();
            if (unknown.Count > 0 || table.Columns.Distinct().Count() != table.Columns.Count)
            {
                throw new Pr2Exception(ErrorCode.BadMessage,
                    $"the backup's table {table.Name} names columns this schema does not have, or one twice ({string.Join(", ", unknown)})");
            }
        }
    }

    // The writer's open replica is never replaced (nor one when the writer does not answer: it is not replaced blind). A
    // database that is gone may be restored even while a writer still takes it for its primary (a server lost under a
    // quiet shard): that writer finds another identity under the head's lock at its next commit and is fenced.
    private async Task RefuseThePrimaryAsync(Restore restore, ShardReplicaSet set)
    {
        var primary = await CurrentPrimary.AskAsync(GrainFactory, set, PrimaryTimeout);
        if (primary == restore.Replica)
        {
            throw new Pr2Exception(ErrorCode.BadMessage,
                $"shard {restore.Shard} replica {restore.Replica} is the shard's primary: move the primary first (pr2 replicas promote {restore.Shard} <other replica>)");
        }

        restore.Primary = primary;
    }

    // A lost database may still be the open writer's (a quiet shard has not noticed the loss): the writer gives it up now, with
    // what it kept of that journal in memory for the agents, which must never be taken for the restored one's. No writer
    // answering has nothing open (a writer open on it would be fenced at its next commit by the new identity anyway).
    private async Task ReleaseTheLostAsync(Restore restore, ShardReplicaSet set)
    {
        try
        {
            if (await CurrentPrimary.AskAsync(GrainFactory, set, PrimaryTimeout) == restore.Replica)
            {
                await GrainFactory.GetGrain<IShardWriterGrain>(restore.Shard).Release(restore.Replica).WaitAsync(PrimaryTimeout);
            }
        }
        catch (Exception e) when (e is Pr2Exception or TimeoutException)
        {
            // No writer answering: none is open.
        }
    }

    // Membership and grain state are the running cluster's, not the shard's: never dropped with a replica they share.
    private static async Task<string?> RuntimeStateAsync(string configured)
    {
        await using var connection = await BackupConnections.OpenAsync(BackupConnections.For(configured), CancellationToken.None);
        return await RuntimeStateAsync(connection);
    }

    private static async Task<string?> RuntimeStateAsync(NpgsqlConnection connection)
    {
        await using var command = new NpgsqlCommand("""
            select (to_regclass('pr2_membership') is not null and exists (select 1 from pr2_membership)),
                   (to_regclass('pr2_grain_state') is not null and exists (select 1 from pr2_grain_state))
            """, connection);
        try
        {
            await using var reader = await command.ExecuteReaderAsync();
            await reader.ReadAsync();
            return reader.GetBoolean(0) ? "membership" : reader.GetBoolean(1) ? "grain state" : null;
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            return null; // planned lazily: a shard database without those tables
        }
    }

    // Rows as the manifest says; the journal exactly positions 1 to the head, none stamped past the clock; and the
    // backed-up replica's own entries all there (anti-entropy will take them as held).
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

        var manifest = restore.Manifest;
        await using var journal = new NpgsqlCommand("""
            select count(*), coalesce(min(position), 0), coalesce(max(position), 0), coalesce(max(lamport_counter), 0),
                   count(*) filter (where origin_replica = $1), coalesce(max(origin_position) filter (where origin_replica = $1), 0)
            from pr2_journal
            """, restore.Connection, restore.Transaction);
        journal.Parameters.Add(new() { Value = manifest.ReplicaId });
        await using var reader = await journal.ExecuteReaderAsync();
        await reader.ReadAsync();
        var (count, first, last, clock, own, ownLast) = (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4), reader.GetInt64(5));
        var head = manifest.Position;
        var problem = (count != head || last != head || (head > 0 && first != 1))
            ? $"the journal holds {count} entries at positions {first} to {last}, the backup's head is {head}"
            : clock > manifest.Clock ? $"the journal holds a stamp {clock} past the backup's clock {manifest.Clock}"
            : own != manifest.OriginPosition || ownLast != manifest.OriginPosition
                ? $"the journal holds {own} entries first written on the backed-up replica, the backup says {manifest.OriginPosition}"
            : null;
        if (problem is not null)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, problem + ": the backup is damaged");
        }
    }

    // A backup of this cluster's shard shares origins with the shard's live replicas (their identities and the origins
    // their vectors count); another cluster's shard under the same code shares none (identities are random). With no
    // other replica answering (all were lost) there is nothing to compare with.
    private async Task CheckOriginsAsync(Restore restore)
    {
        var set = shards.Get(restore.Shard);
        var vectors = await Task.WhenAll(set.Live.Where(i => i != restore.Replica).Select(async i =>
        {
            try
            {
                return await VersionVector.ReadAsync(set.Replicas[i]).WaitAsync(PrimaryTimeout);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
            {
                return null;
            }
        }));
        var known = vectors.OfType<VersionVector>().SelectMany(v => v.Positions.Keys.Append(v.ReplicaId)).ToHashSet();
        if (known.Count == 0 || restore.Manifest.Position == 0)
        {
            return;
        }

        await using var command = new NpgsqlCommand("select distinct origin_replica from pr2_journal", restore.Connection, restore.Transaction);
        var origins = new List<Guid>();
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                origins.Add(reader.GetGuid(0));
            }
        }

        if (!origins.Any(known.Contains))
        {
            throw new Pr2Exception(ErrorCode.BadMessage,
                $"none of the replicas the backup's entries were written on ({string.Join(", ", origins.Take(3))}) is known to shard {restore.Shard}'s " +
                "other replicas: it is not a backup of this cluster's shard");
        }
    }

    // The highest epoch among the shard's other replicas that answer: the restored replica starts there, so a fence that
    // was on the lost one is not undone (a writer older than the current one must not count it).
    private async Task<long> OtherEpochsAsync(Restore restore)
    {
        var set = shards.Get(restore.Shard);
        var epochs = await Task.WhenAll(set.Live.Where(i => i != restore.Replica).Select(async i =>
        {
            try
            {
                await using var command = set.Replicas[i].CreateCommand("select epoch from pr2_writer_head");
                return (long)(await command.ExecuteScalarAsync().WaitAsync(PrimaryTimeout))!;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
            {
                return 0L;
            }
        }));
        return epochs.DefaultIfEmpty(0).Max();
    }

    private static async Task<Guid> SetHeadAsync(Restore restore, long epoch)
    {
        var manifest = restore.Manifest;
        await using var batch = new NpgsqlBatch(restore.Connection, restore.Transaction)
        {
            BatchCommands =
            {
                new("update pr2_writer_head set epoch = $1, position = $2, clock = $3, origin_position = 0, primary_term = -1, updated_at = now()")
                {
                    Parameters = { new() { Value = epoch }, new() { Value = manifest.Position }, new() { Value = manifest.Clock } },
                },
                // The backed-up replica's own entries are all here: counted for that origin, anti-entropy does not send them again.
                new("""
                    insert into pr2_origin_vector (origin_replica, position) values ($1, $2)
                    on conflict (origin_replica) do update set position = greatest(pr2_origin_vector.position, excluded.position), updated_at = now()
                    """)
                {
                    Parameters = { new() { Value = manifest.ReplicaId }, new() { Value = manifest.OriginPosition } },
                },
                // A silo's cache of what an agent last wrote in this replica is valid at one (mark, revision): every revision moves
                // far from what any cache of the replaced database holds, so each starts over.
                new("update pr2_agent_mark set revision = revision + $1")
                {
                    Parameters = { new() { Value = (long)Random.Shared.Next(1 << 20, int.MaxValue) << 8 } },
                },
                new("select replica_id from pr2_replica"),
            },
        };
        return (Guid)(await batch.ExecuteScalarAsync())!;
    }

    // Puts the restored database under the replica's name. Replacing: the old database is closed to new connections, its
    // other sessions ended, and checked on a session of its own that nothing can join any more (no writer opened on it,
    // nothing on it the primary lacks, no cluster state in it); its epoch then lifts the restored one's, and it goes aside
    // in the same transaction as the new one takes its name (no moment without a database of that name for a silo's
    // migrator to create), to be dropped after.
    private async Task SwapAsync(Restore restore)
    {
        // The removal may have begun while the copy ran (the same check as Begin's, at the last moment before the swap).
        await DirectoryGrain.RefuseIfBeingRemovedAsync(GrainFactory, ParseKey().Shard, "its replicas are no longer restored");
        var (target, staging, aside) = (BackupConnections.Quote(restore.Target), BackupConnections.Quote(restore.Staging), BackupConnections.Quote(restore.Aside));
        if (restore.Closed)
        {
            // An earlier attempt closed the old database and lost its answer: open it again first.
            await ExecuteAsync(restore.Maintenance, $"alter database {target} allow_connections true");
            restore.Closed = false;
        }

        if (await SwappedAsync(restore))
        {
            return; // an earlier attempt went through and its answer was lost
        }

        if (!restore.Replacing)
        {
            try
            {
                await ExecuteAsync(restore.Maintenance, $"alter database {staging} rename to {target}");
                return;
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.DuplicateDatabase)
            {
                throw new Pr2Exception(ErrorCode.BadMessage,
                    $"shard {restore.Shard} replica {restore.Replica}: database '{restore.Target}' was created meanwhile (a silo starting?); restore again with --replace");
            }
        }

        var set = shards.Get(restore.Shard);
        await RefuseThePrimaryAsync(restore, set);
        var primary = restore.Primary ?? throw new Pr2Exception(ErrorCode.ShardUnavailable, $"shard {restore.Shard} has no primary answering; restore again");
        var held = await BackupConnections.GuardAsync($"restore of shard {restore.Shard} replica {restore.Replica}",
            () => BackupConnections.OpenAsync(BackupConnections.For(restore.Configured), CancellationToken.None));
        try
        {
            restore.Closed = true;
            await ExecuteAsync(restore.Maintenance, $"alter database {target} allow_connections false");
            await EndOtherSessionsAsync(restore, held.ProcessID);
            await RefuseWhatTheOldHoldsAsync(restore, held, set.Replicas[primary], primary);
            await using (var lift = await BackupConnections.OpenAsync(BackupConnections.For(restore.Configured, restore.Staging), CancellationToken.None))
            await using (var command = new NpgsqlCommand("update pr2_writer_head set epoch = greatest(epoch, (select $1::bigint))", lift))
            {
                await using var epoch = new NpgsqlCommand("select epoch from pr2_writer_head", held);
                command.Parameters.Add(new() { Value = (long)(await epoch.ExecuteScalarAsync())! });
                await command.ExecuteNonQueryAsync();
            }

            await held.DisposeAsync();
            var deadline = DateTime.UtcNow + SwapTimeout;
            while (true)
            {
                try
                {
                    await ExecuteAsync(restore.Maintenance, $"begin; alter database {target} rename to {aside}; alter database {staging} rename to {target}; commit");
                    restore.Closed = false; // the closed one is the one aside now
                    break;
                }
                catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ObjectInUse && DateTime.UtcNow < deadline)
                {
                    await EndOtherSessionsAsync(restore, 0); // a session ended a moment ago may still be leaving
                    await Task.Delay(100);
                }
            }
        }
        catch (Exception e)
        {
            await held.DisposeAsync();
            if (restore.Closed)
            {
                await ExecuteAsync(restore.Maintenance, $"alter database {target} allow_connections true");
                restore.Closed = false;
            }

            throw e is PostgresException { SqlState: PostgresErrorCodes.ObjectInUse } or NpgsqlException { IsTransient: true } or TimeoutException
                ? new Pr2Exception(ErrorCode.ShardUnavailable, $"shard {restore.Shard} replica {restore.Replica}: the old database could not be swapped out ({e.GetBaseException().Message}); complete the restore again")
                : e;
        }

        try
        {
            await ExecuteAsync(restore.Maintenance, $"drop database if exists {aside} with (force)");
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            Log.RestoreLeftover(logger, restore.Aside, e.GetBaseException().Message);
        }
    }

    // The swap went through already: the temporary database is gone and the replica's name holds the restored identity.
    private static async Task<bool> SwappedAsync(Restore restore)
    {
        if (await DatabaseExistsAsync(restore.Maintenance, restore.Staging))
        {
            return false;
        }

        try
        {
            await using var connection = await BackupConnections.OpenAsync(BackupConnections.For(restore.Configured), CancellationToken.None);
            await using var command = new NpgsqlCommand("select replica_id from pr2_replica", connection);
            return await command.ExecuteScalarAsync() is Guid id && id == restore.ReplicaId;
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.InvalidCatalogName or PostgresErrorCodes.UndefinedTable)
        {
            return false;
        }
    }

    private static bool IsTransient(Exception e) => e is NpgsqlException { IsTransient: true } or TimeoutException or IOException
        or PostgresException { SqlState: PostgresErrorCodes.ObjectInUse or PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CannotConnectNow };

    private static Task EndOtherSessionsAsync(Restore restore, int keep) => ExecuteAsync(restore.Maintenance,
        $"select pg_terminate_backend(pid) from pg_stat_activity where datname = '{restore.Target.Replace("'", "''", StringComparison.Ordinal)}' " +
        $"and pid <> pg_backend_pid() and pid <> {keep}");

    // On the old database, closed to everyone but this session: nothing may be lost with it.
    private static async Task RefuseWhatTheOldHoldsAsync(Restore restore, NpgsqlConnection held, NpgsqlDataSource primarySource, int primary)
    {
        await using (var opened = new NpgsqlCommand("select primary_term = epoch from pr2_writer_head", held))
        {
            if ((bool)(await opened.ExecuteScalarAsync())!)
            {
                throw new Pr2Exception(ErrorCode.ShardUnavailable,
                    $"shard {restore.Shard} replica {restore.Replica} became the primary meanwhile (a fail-over); move the primary off it, then complete the restore again");
            }
        }

        if (await RuntimeStateAsync(held) is { } runtime)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, $"shard {restore.Shard} replica {restore.Replica}: the old database holds the cluster's {runtime}; it is not replaced");
        }

        var replaced = await VersionVector.ReadAsync(held);
        var have = await VersionVector.ReadAsync(primarySource);
        var lacking = replaced.Positions.Sum(p => Math.Max(0, p.Value - have[p.Key]));
        if (lacking > 0)
        {
            throw new Pr2Exception(ErrorCode.ShardUnavailable,
                $"shard {restore.Shard} replica {restore.Replica} holds {lacking} entries the primary (replica {primary}) lacks; anti-entropy copies them: complete the restore again in a moment");
        }
    }

    // Agents keeping a mark for this replica's journal in another shard (the object directory, in shard 0) go back to the
    // restored head: past it, the positions now hold other entries.
    // What the writer acknowledged and no replica holds any more was lost with the servers: said, and no longer waited for.
    private async Task<IEnumerable<string>> ForgetLostAsync(Restore restore)
    {
        try
        {
            var lost = await GrainFactory.GetGrain<IShardWriterGrain>(restore.Shard).ForgetLost().WaitAsync(PrimaryTimeout * 2);
            return lost switch
            {
                0 => [],
                < 0 => [$"a replica of shard {restore.Shard} did not answer: strong reads may wait for acknowledged entries lost with the servers until it does and the shard's writer starts again"],
                _ => [$"{lost} acknowledged entries of shard {restore.Shard} are on no replica: they were lost with the servers (written after the backup, on them alone)"],
            };
        }
        catch (Exception e) when (e is Pr2Exception or TimeoutException or OrleansException)
        {
            return [$"the shard's writer did not answer ({e.Message}): strong reads may wait for acknowledged entries lost with the servers until it starts again"];
        }
    }

    private async Task<List<string>> ResetMarksElsewhereAsync(Restore restore)
    {
        var warnings = new List<string>();
        foreach (var agent in agents.Agents.Where(a => a.PerReplica && a.Follows(restore.Shard) && a.HomeShard(restore.Shard) != restore.Shard))
        {
            var mark = AgentMarks.Name(agent, restore.Shard, restore.Replica);
            try
            {
                var homeShard = shards.Get(agent.HomeShard(restore.Shard));
                await CurrentPrimary.AskAsync(GrainFactory, homeShard, PrimaryTimeout);
                // The object directory's rebuild in progress follows the journal under a mark of its own: back with the live one.
                var rebuildMark = agent is ObjectDirectoryProjector
                    ? AgentMarks.Name(new ObjectDirectoryProjector(ObjectDirectoryProjector.ShadowTable), restore.Shard, restore.Replica)
                    : mark;
                // One mark per statement, the rebuild's first: the order its swap locks them in, so neither waits on the other.
                foreach (var name in rebuildMark == mark ? [mark] : new[] { rebuildMark, mark })
                {
                    await using var command = AgentMarks.Home(agent, shards, restore.Shard, restore.Replica).CreateCommand(
                        "update pr2_agent_mark set position = least(position, $1), revision = revision + 1, updated_at = now() where agent = $2 and shard = $3");
                    command.Parameters.Add(new() { Value = restore.Manifest.Position });
                    command.Parameters.Add(new() { Value = name });
                    command.Parameters.Add(new() { Value = restore.Shard });
                    await command.ExecuteNonQueryAsync();
                }
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or Pr2Exception or OrleansException)
            {
                warnings.Add($"the mark {mark} of shard {restore.Shard} in shard {agent.HomeShard(restore.Shard)} could not be moved back to {restore.Manifest.Position} " +
                    $"({e.GetBaseException().Message}): actors written after the backup may be missing from what {agent.Name} keeps");
            }
        }

        return warnings;
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
            if (restore.Closed)
            {
                await ExecuteAsync(restore.Maintenance, $"alter database {BackupConnections.Quote(restore.Target)} allow_connections true");
                restore.Closed = false;
            }

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
        PostgresException { SqlState: PostgresErrorCodes.BadCopyFileFormat or PostgresErrorCodes.InvalidBinaryRepresentation or PostgresErrorCodes.UniqueViolation
            or PostgresErrorCodes.CheckViolation or PostgresErrorCodes.NotNullViolation or PostgresErrorCodes.InvalidTextRepresentation } p =>
            new Pr2Exception(ErrorCode.BadMessage, $"restore of shard {restore.Shard} replica {restore.Replica}: the server refused the backup's data ({DatabaseFailure.Describe(p)}): the backup is damaged or not PR2's"),
        _ => BackupConnections.Answer($"restore of shard {restore.Shard} replica {restore.Replica}", e),
    };

    private (int Shard, int Replica) ParseKey()
    {
        var parts = this.GetPrimaryKeyString().Split('/');
        return parts.Length == 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var shard)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var replica)
            ? (shard, replica)
            : throw new Pr2Exception(ErrorCode.BadMessage, $"a restore is keyed \"shard/replica\", not \"{this.GetPrimaryKeyString()}\"");
    }

    // A database name derived from the replica's: cut to fit, with a hash of the whole name so two long names never share one.
    private static string Named(string target, string suffix)
    {
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(target)))[..8];
        var room = MaxDatabaseName - suffix.Length - hash.Length - 1;
        return $"{(target.Length <= room ? target : target[..room])}_{hash}{suffix}";
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

    private sealed class Restore(Guid id, int shard, int replica, BackupManifest manifest, string configured, string target, bool replace)
    {
        public Guid Id { get; } = id;
        public int Shard { get; } = shard;
        public int Replica { get; } = replica;
        public BackupManifest Manifest { get; } = manifest;
        public string Configured { get; } = configured;
        public string Target { get; } = target;
        public string Staging { get; } = Named(target, "_pr2_restore");
        public string Aside { get; } = Named(target, "_pr2_old");
        public Guid? ReplicaId { get; set; }

        // The replica's database closed to connections for the swap (opened again on every way out but a swap).
        public bool Closed { get; set; }
        public string Maintenance { get; } = BackupConnections.For(configured, "postgres");
        public bool Replace { get; } = replace;
        public bool Replacing { get; set; }
        public int? Primary { get; set; }
        public NpgsqlConnection? Connection { get; set; }
        public NpgsqlTransaction? Transaction { get; set; }
        public NpgsqlRawCopyStream? Copy { get; set; }
        public string? Table { get; set; }
        public int TableIndex { get; set; } = -1;
        public DateTime LastActivity { get; set; } = DateTime.UtcNow;
    }
}
