using Npgsql;
using PR2.Grains.Agents;
using PR2.Grains.Records;
using PR2.Grains.Storage;

namespace PR2.Grains.Projections;

/// <summary>
/// Rebuilds one replica's records view blue/green (sql/019). <see cref="StartAsync"/> creates an empty shadow table
/// (<see cref="RecordStore.Next"/>, the live table's columns, constraints and indexes); the rebuild's fold
/// (<see cref="RecordsProjector"/> on the shadow, its own mark) fills it from the journal while writes and the live agent go
/// on; <see cref="TrySwapAsync"/> swaps it in once it is within one agent batch of the live mark: in one transaction it
/// locks the live mark, folds the last entries and pending restamps into the shadow, drops the live table and renames the
/// shadow into its place, and moves the live mark (with a new revision, so that no silo trusts what it cached). Readers
/// see the old view or the new one, each with the mark it reflects: they take the table's share lock before their
/// snapshot (<see cref="RecordStore.LockLiveAsync"/>). The live mark is held only for the last few entries' fold and the
/// renames (writes that fold records inline wait on it), and the table's lock is waited for briefly: a session holding
/// it for long (a backup) makes the attempt give up before it locks anything.
/// </summary>
public static class RecordsRebuild
{
    public const string Projection = RecordsProjector.AgentName;

    /// <summary>How far behind the live mark the shadow may be when the swap is tried: the swap folds the rest with the mark locked.</summary>
    public const int SwapWithin = AgentRunner.DefaultBatchSize;

    // Most restamps the shadow may still have to take in when the swap is tried (each refolds an actor with the mark locked).
    private const int RestampsWithin = 20;

    // The table's exclusive lock queues every new reader behind it while it waits: give up quickly instead.
    private const string TableLockTimeout = "set local lock_timeout = '100ms'";

    // Who has held a lock on the view (in this database) for more than a second, as "pid 123 (client backend)": a backup's
    // snapshot, a long query. A swap now would only wait for them, holding the mark that writes need. Autovacuum is not
    // counted: it gives way to a lock that waits.
    private const string LongHolders = $"""
        select string_agg('pid ' || l.pid || ' (' || coalesce(a.backend_type, '?') || ')', ', ')
        from pg_locks l join pg_stat_activity a on a.pid = l.pid
        where l.database = (select oid from pg_database where datname = current_database())
          and l.relation = to_regclass('{RecordStore.Live}') and l.granted and l.pid <> pg_backend_pid()
          and a.backend_type <> 'autovacuum worker' and a.xact_start < now() - interval '1 second'
        """;

    // A table's indexes, each as its definition without its own name or the table's (so the live table's and the
    // shadow's compare), and whether it is the primary key.
    private const string IndexDefinitions = """
        select c.relname, regexp_replace(pg_get_indexdef(i.indexrelid), '^CREATE (UNIQUE )?INDEX \S+ ON \S+ ', 'CREATE \1INDEX ON ') || case when i.indisprimary then ' primary' else '' end
        from pg_index i join pg_class c on c.oid = i.indexrelid
        where i.indrelid = $1::regclass
        """;

    // The shape of a table: its columns (name, type, null, default, collation), index definitions and constraints, by name
    // rather than by column number. The shadow was made LIKE the live table; a migration since then changed the live one.
    private const string Shape = $"""
        select coalesce((select string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || case when a.attnotnull then ' not null' else '' end
                        || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '') || ' collate ' || a.attcollation::text, ', ' order by a.attnum)
                 from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
                 where a.attrelid = $1::regclass and a.attnum > 0 and not a.attisdropped), '')
            || ' | ' || coalesce((select string_agg(d.definition, ', ' order by d.definition) from ({IndexDefinitions}) as d(name, definition)), '')
            || ' | ' || coalesce((select string_agg(c.contype::text || ' ' || pg_get_constraintdef(c.oid), ', ' order by c.contype::text, pg_get_constraintdef(c.oid))
                 from pg_constraint c where c.conrelid = $1::regclass), '')
        """;

    /// <summary>
    /// Starts a rebuild on this replica, or finds the one in progress (unless <paramref name="restart"/>: then it starts
    /// over, e.g. after a fix to the fold was deployed during it); returns its generation.
    /// </summary>
    public static async Task<long> StartAsync(NpgsqlDataSource replica, int shard, bool restart = false, CancellationToken cancellationToken = default)
    {
        await using var connection = await replica.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        if (await RebuildRows.LockBuildingAsync(connection, transaction, Projection, cancellationToken) is { } building && !restart)
        {
            return building.Generation;
        }

        await CreateShadowAsync(connection, transaction, shard, cancellationToken);
        var generation = await RebuildRows.StartAsync(connection, transaction, Projection, follows: null, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return generation;
    }

    // An empty shadow shaped like the live table, its mark at 0 (committed: a fold with nothing to fold leaves no mark of
    // its own), and every restamp recorded so far taken (the shadow reads those stamps when it reaches their entries).
    private static async Task CreateShadowAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, int shard, CancellationToken cancellationToken)
    {
        await ExecuteAsync(connection, transaction, $"drop table if exists {RecordStore.Next}", cancellationToken);
        await ExecuteAsync(connection, transaction, $"create table {RecordStore.Next} (like {RecordStore.Live} including all)", cancellationToken);
        await ExecuteAsync(connection, transaction, RecordsProjector.TakeAllRestamps(RecordsProjector.ShadowRefolded), cancellationToken);
        await RebuildRows.ResetMarkAsync(connection, transaction, RecordsProjector.ShadowName, shard, 0, cancellationToken);
    }

    /// <summary>
    /// Cancels the rebuild in progress on this replica: the live view, which the rebuild never touched, stays as it is, and
    /// the shadow is dropped (unless a fold batch holds its mark: then the next start drops it). Serialized with the swap by
    /// the rebuild row's table lock, so a rebuild is either swapped in or canceled, never both. Returns the generation
    /// canceled, or null when none was building (done, canceled, or never started).
    /// </summary>
    public static async Task<long?> CancelAsync(NpgsqlDataSource replica, int shard, CancellationToken cancellationToken = default)
    {
        await using var connection = await replica.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        if (await RebuildRows.LockBuildingAsync(connection, transaction, Projection, cancellationToken) is not { } building)
        {
            return null;
        }

        await RebuildRows.MarkCanceledAsync(connection, transaction, Projection, why: null, cancellationToken);

        // The shadow goes now unless a fold batch holds its mark (not waited for: that batch may be long; the next start drops
        // and makes the shadow anew, and a fold finding the row canceled stops).
        await RebuildRows.DropUnlessFoldingAsync(connection, transaction, RecordsProjector.ShadowName, shard, async () =>
        {
            await ExecuteAsync(connection, transaction, $"drop table if exists {RecordStore.Next}", cancellationToken);
            // As after a swap: at 0 with a new revision, so that a fold still running meets a mark it never read.
            await RebuildRows.ResetMarkAsync(connection, transaction, RecordsProjector.ShadowName, shard, 0, cancellationToken);
        }, cancellationToken);

        await transaction.CommitAsync(cancellationToken);
        return building.Generation;
    }

    /// <summary>Whether a rebuild is in progress on this replica.</summary>
    public static Task<bool> BuildingAsync(NpgsqlDataSource replica, CancellationToken cancellationToken = default) =>
        RebuildRows.BuildingAsync(replica, Projection, cancellationToken);

    /// <summary>
    /// Swaps the shadow in when it is within <see cref="SwapWithin"/> entries of the live mark; with
    /// <see cref="SwapOutcome.Swapped"/>, the position the swapped-in view covers; with <see cref="SwapOutcome.Busy"/>, who
    /// holds what it needs. A wait for a lock or a statement that times out throws (<c>55P03</c>, <c>57014</c>, nothing
    /// changed): the caller tries again later, as when busy.
    /// </summary>
    public static async Task<(SwapOutcome Outcome, long Position, string? Busy)> TrySwapAsync(NpgsqlDataSource replica, int shard, int replicaIndex,
        CancellationToken cancellationToken = default)
    {
        await using var connection = await replica.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        if (await RebuildRows.LockBuildingAsync(connection, transaction, Projection, cancellationToken) is null)
        {
            return (SwapOutcome.NotBuilding, 0, null);
        }

        // No migration runs while the swap does (it takes the migrator's lock for its transaction): one that changed the
        // live table between the shape check and the drop would be lost with it.
        if (!await ScalarAsync<bool>(connection, transaction, $"select pg_try_advisory_xact_lock({SchemaMigrator.MigrationLockKey})", cancellationToken))
        {
            return (SwapOutcome.Busy, 0, "a schema migration is running");
        }

        if (await ScalarAsync<string?>(connection, transaction, LongHolders, cancellationToken) is { } holders)
        {
            return (SwapOutcome.Busy, 0, $"the records view is held by {holders}");
        }

        if (await ShapeAsync(connection, transaction, RecordStore.Live, cancellationToken) != await ShapeAsync(connection, transaction, RecordStore.Next, cancellationToken))
        {
            await CreateShadowAsync(connection, transaction, shard, cancellationToken);
            await transaction.CommitAsync(cancellationToken);
            return (SwapOutcome.Restarted, 0, null);
        }

        // The shadow's mark first (nobody else takes both), then the live mark, as the writer's inline projection and the
        // records agent take it: held from here to the commit.
        var shadow = await RebuildRows.LockMarkAsync(connection, transaction, RecordsProjector.ShadowName, shard, cancellationToken) ?? 0;
        var live = await RebuildRows.LockMarkAsync(connection, transaction, RecordsProjector.AgentName, shard, cancellationToken) ?? 0;
        var gap = Math.Max(0, live - shadow);
        if (gap > SwapWithin || await PendingRestampsAsync(connection, transaction, Math.Max(live, shadow), cancellationToken) > RestampsWithin)
        {
            return (SwapOutcome.Behind, 0, null);
        }

        // The last entries, then every restamp not yet taken in up to where the view will stand: the same fold as the agent's.
        var fold = new RecordsProjector(table: RecordStore.Next);
        var entries = await RebuildRows.ReadGapAsync(connection, shard, shadow, live, $"records rebuild of shard {shard} replica {replicaIndex}", cancellationToken);
        var position = Math.Max(live, shadow);
        if (entries.Count > 0)
        {
            await fold.ApplyAsync(new AgentBatch(shard, replicaIndex, shadow), entries, connection, transaction, cancellationToken);
        }

        await fold.BeforeBatchAsync(new AgentBatch(shard, replicaIndex, position), connection, transaction, cancellationToken);

        var indexes = await IndexNamesAsync(connection, transaction, shard, replicaIndex, cancellationToken);
        await ExecuteAsync(connection, transaction, TableLockTimeout, cancellationToken);
        await ExecuteAsync(connection, transaction, $"drop table {RecordStore.Live}", cancellationToken);
        await ExecuteAsync(connection, transaction, $"alter table {RecordStore.Next} rename to {RecordStore.Live}", cancellationToken);
        foreach (var (from, to) in indexes)
        {
            await ExecuteAsync(connection, transaction, $"alter index \"{from}\" rename to \"{to}\"", cancellationToken);
        }

        await using (var move = new NpgsqlBatch(connection, transaction)
        {
            BatchCommands =
            {
                new("""
                    insert into pr2_agent_mark (agent, shard, position) values ($1, $2, $3)
                    on conflict (agent, shard) do update set position = $3, revision = pr2_agent_mark.revision + 1, updated_at = now()
                    """) { Parameters = { new() { Value = RecordsProjector.AgentName }, new() { Value = shard }, new() { Value = position } } },
                // Kept at 0 with a new revision: a later rebuild's fold never meets a (position, revision) this one had.
                new("update pr2_agent_mark set position = 0, revision = revision + 1, updated_at = now() where agent = $1 and shard = $2")
                {
                    Parameters = { new() { Value = RecordsProjector.ShadowName }, new() { Value = shard } },
                },
                new(RebuildRows.Swapped) { Parameters = { new() { Value = position }, new() { Value = Projection } } },
            },
        })
        {
            await move.ExecuteNonQueryAsync(cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        return (SwapOutcome.Swapped, position, null);
    }

    /// <summary>Records why the last attempt failed, for status (best effort).</summary>
    public static Task RecordErrorAsync(NpgsqlDataSource replica, string error, CancellationToken cancellationToken = default) =>
        RebuildRows.RecordErrorAsync(replica, Projection, error, cancellationToken);

    /// <summary>Where this replica's rebuild stands (state "live" when none was ever started).</summary>
    public static Task<ProjectionReplicaStatus> StatusAsync(NpgsqlDataSource replica, int shard, int replicaIndex, CancellationToken cancellationToken = default) =>
        RebuildRows.StatusAsync(replica, shard, replicaIndex, Projection, RecordsProjector.AgentName, RecordsProjector.ShadowName, cancellationToken);

    private static async Task<long> PendingRestampsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long upTo, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            "select count(*) from pr2_restamp r join pr2_journal j using (message_id) where not r.next_refolded and j.position <= $1", connection, transaction);
        command.Parameters.Add(new() { Value = upTo });
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    private static async Task<string> ShapeAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string table, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(Shape, connection, transaction);
        command.Parameters.Add(new() { Value = table });
        return (string)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        return await command.ExecuteScalarAsync(cancellationToken) is T value ? value : default!;
    }

    // The shadow's indexes were named by CREATE TABLE ... LIKE; after the swap each takes the name of the live table's
    // index with the same definition, so the view's indexes keep the names the migrations gave them. Two indexes with one
    // definition cannot be told apart: refused (recorded as the rebuild's error) rather than guessed.
    private static async Task<List<(string From, string To)>> IndexNamesAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, int shard, int replica,
        CancellationToken cancellationToken)
    {
        var live = await IndexesAsync(connection, transaction, RecordStore.Live, cancellationToken);
        var next = await IndexesAsync(connection, transaction, RecordStore.Next, cancellationToken);
        if (live.Select(i => i.Definition).Distinct(StringComparer.Ordinal).Count() != live.Count
            || next.Select(i => i.Definition).Distinct(StringComparer.Ordinal).Count() != next.Count || live.Count != next.Count)
        {
            throw new InvalidOperationException(
                $"records rebuild of shard {shard} replica {replica}: the view's indexes cannot be paired by definition ({live.Count} live, {next.Count} rebuilt, some alike); drop the duplicate index");
        }

        return [.. next.Select(n => (n.Name, live.Single(l => l.Definition == n.Definition).Name)).Where(pair => pair.Item1 != pair.Item2)];
    }

    private static async Task<List<(string Name, string Definition)>> IndexesAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string table,
        CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(IndexDefinitions, connection, transaction);
        command.Parameters.Add(new() { Value = table });
        var indexes = new List<(string, string)>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            indexes.Add((reader.GetString(0), reader.GetString(1)));
        }

        return indexes;
    }

    private static Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, CancellationToken cancellationToken) =>
        RebuildRows.ExecuteAsync(connection, transaction, sql, cancellationToken);
}
