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
/// snapshot (<see cref="RecordStore.LockLiveAsync"/>).
/// </summary>
public static class RecordsRebuild
{
    public const string Projection = RecordsProjector.AgentName;

    /// <summary>How far behind the live mark the shadow may be when the swap is tried: the swap folds the rest with the mark locked.</summary>
    public const int SwapWithin = AgentRunner.DefaultBatchSize;

    // The swap takes the live table's exclusive lock: a reader holding it (a backup's snapshot) makes the swap give up
    // and try again, rather than queue every new reader behind it.
    private const string LockTimeout = "set local lock_timeout = '2s'";

    /// <summary>Starts a rebuild on this replica, or finds the one in progress; returns its generation.</summary>
    public static async Task<long> StartAsync(NpgsqlDataSource replica, int shard, CancellationToken cancellationToken = default)
    {
        await using var connection = await replica.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await ExecuteAsync(connection, transaction, LockTimeout, cancellationToken);
        await ExecuteAsync(connection, transaction, "lock table pr2_projection_rebuild in exclusive mode", cancellationToken);
        if (await ReadRowAsync(connection, transaction, cancellationToken) is { State: "building" } building)
        {
            return building.Generation;
        }

        await ExecuteAsync(connection, transaction, $"drop table if exists {RecordStore.Next}", cancellationToken);
        await ExecuteAsync(connection, transaction, $"create table {RecordStore.Next} (like {RecordStore.Live} including all)", cancellationToken);
        await ExecuteAsync(connection, transaction, "update pr2_restamp set next_refolded = true where not next_refolded", cancellationToken);
        await using (var forget = new NpgsqlCommand("delete from pr2_agent_mark where agent = $1 and shard = $2", connection, transaction))
        {
            forget.Parameters.Add(new() { Value = RecordsProjector.ShadowName });
            forget.Parameters.Add(new() { Value = shard });
            await forget.ExecuteNonQueryAsync(cancellationToken);
        }

        await using var start = new NpgsqlCommand("""
            insert into pr2_projection_rebuild (projection, generation, state) values ($1, 1, 'building')
            on conflict (projection) do update set generation = pr2_projection_rebuild.generation + 1, state = 'building',
                started_at = now(), swapped_at = null, swapped_position = null, last_error = null
            returning generation
            """, connection, transaction);
        start.Parameters.Add(new() { Value = Projection });
        var generation = (long)(await start.ExecuteScalarAsync(cancellationToken))!;
        await transaction.CommitAsync(cancellationToken);
        return generation;
    }

    /// <summary>Whether a rebuild is in progress on this replica.</summary>
    public static async Task<bool> BuildingAsync(NpgsqlDataSource replica, CancellationToken cancellationToken = default)
    {
        await using var connection = await replica.OpenConnectionAsync(cancellationToken);
        return await ReadRowAsync(connection, null, cancellationToken) is { State: "building" };
    }

    /// <summary>
    /// Swaps the shadow in when it is within <see cref="SwapWithin"/> entries of the live mark; returns the position the
    /// swapped-in view covers, or null when the shadow is further behind (fold more, then try again) or no rebuild is in
    /// progress.
    /// </summary>
    public static async Task<long?> TrySwapAsync(NpgsqlDataSource replica, int shard, int replicaIndex, CancellationToken cancellationToken = default)
    {
        await using var connection = await replica.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await ExecuteAsync(connection, transaction, LockTimeout, cancellationToken);
        await ExecuteAsync(connection, transaction, "lock table pr2_projection_rebuild in exclusive mode", cancellationToken);
        if (await ReadRowAsync(connection, transaction, cancellationToken) is not { State: "building" })
        {
            return null;
        }

        // The live mark first (as the writer's inline projection and the records agent take it), then the shadow's.
        var live = await LockMarkAsync(connection, transaction, RecordsProjector.AgentName, shard, cancellationToken) ?? 0;
        if (await LockMarkAsync(connection, transaction, RecordsProjector.ShadowName, shard, cancellationToken) is not { } shadow || live - shadow > SwapWithin)
        {
            return null;
        }

        // The last entries, then every restamp not yet taken in up to where the view will stand: the same fold as the agent's.
        var fold = new RecordsProjector(table: RecordStore.Next);
        var entries = live > shadow ? await JournalStore.ReadAsync(connection, shard, shadow, (int)(live - shadow), withBodies: true, cancellationToken) : [];
        if (entries.Count != live - shadow || (entries.Count > 0 && (entries[0].Position != shadow + 1 || entries[^1].Position != live)))
        {
            throw new InvalidOperationException($"records rebuild of shard {shard} replica {replicaIndex}: the journal does not hold positions {shadow + 1}..{live} contiguously");
        }

        var position = Math.Max(live, shadow);
        if (entries.Count > 0)
        {
            await fold.ApplyAsync(new AgentBatch(shard, replicaIndex, shadow), entries, connection, transaction, cancellationToken);
        }

        await fold.BeforeBatchAsync(new AgentBatch(shard, replicaIndex, position), connection, transaction, cancellationToken);

        var indexes = await IndexNamesAsync(connection, transaction, cancellationToken);
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
                new("delete from pr2_agent_mark where agent = $1 and shard = $2")
                {
                    Parameters = { new() { Value = RecordsProjector.ShadowName }, new() { Value = shard } },
                },
                new("update pr2_projection_rebuild set state = 'done', swapped_at = now(), swapped_position = $1, last_error = null where projection = $2")
                {
                    Parameters = { new() { Value = position }, new() { Value = Projection } },
                },
            },
        })
        {
            await move.ExecuteNonQueryAsync(cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        return position;
    }

    /// <summary>Records why the last attempt failed, for status (best effort).</summary>
    public static async Task RecordErrorAsync(NpgsqlDataSource replica, string error, CancellationToken cancellationToken = default)
    {
        await using var command = replica.CreateCommand("update pr2_projection_rebuild set last_error = $1 where projection = $2 and state = 'building'");
        command.Parameters.Add(new() { Value = error });
        command.Parameters.Add(new() { Value = Projection });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Where this replica's rebuild stands (state "live" when none was ever started).</summary>
    public static async Task<ProjectionReplicaStatus> StatusAsync(NpgsqlDataSource replica, int shard, int replicaIndex, CancellationToken cancellationToken = default)
    {
        await using var connection = await replica.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken);
        var row = await ReadRowAsync(connection, transaction, cancellationToken);
        var live = await MarkAsync(connection, transaction, RecordsProjector.AgentName, shard, cancellationToken);
        var folded = row is { State: "building" } ? await MarkAsync(connection, transaction, RecordsProjector.ShadowName, shard, cancellationToken) : live;
        await using var headCommand = new NpgsqlCommand("select position from pr2_writer_head", connection, transaction);
        var head = (long)(await headCommand.ExecuteScalarAsync(cancellationToken) ?? 0L);
        await transaction.CommitAsync(cancellationToken);
        return new ProjectionReplicaStatus(replicaIndex, row?.State ?? "live", row?.Generation ?? 0, folded, head, live,
            row?.StartedAt, row?.SwappedAt, row?.SwappedPosition ?? -1, row?.Error);
    }

    private sealed record RebuildRow(long Generation, string State, DateTimeOffset StartedAt, DateTimeOffset? SwappedAt, long? SwappedPosition, string? Error);

    private static async Task<RebuildRow?> ReadRowAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            "select generation, state, started_at, swapped_at, swapped_position, last_error from pr2_projection_rebuild where projection = $1", connection, transaction);
        command.Parameters.Add(new() { Value = Projection });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken)
            ? new RebuildRow(reader.GetInt64(0), reader.GetString(1), reader.GetFieldValue<DateTimeOffset>(2),
                reader.IsDBNull(3) ? null : reader.GetFieldValue<DateTimeOffset>(3), reader.IsDBNull(4) ? null : reader.GetInt64(4),
                reader.IsDBNull(5) ? null : reader.GetString(5))
            : null;
    }

    private static async Task<long?> LockMarkAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string agent, int shard, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("select position from pr2_agent_mark where agent = $1 and shard = $2 for update", connection, transaction);
        command.Parameters.Add(new() { Value = agent });
        command.Parameters.Add(new() { Value = shard });
        return (long?)await command.ExecuteScalarAsync(cancellationToken);
    }

    private static async Task<long> MarkAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string agent, int shard, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("select position from pr2_agent_mark where agent = $1 and shard = $2", connection, transaction);
        command.Parameters.Add(new() { Value = agent });
        command.Parameters.Add(new() { Value = shard });
        return (long?)await command.ExecuteScalarAsync(cancellationToken) ?? 0;
    }

    // The shadow's indexes were named by CREATE TABLE ... LIKE; after the swap each takes the name of the live table's
    // index with the same definition, so the view's indexes keep the names the migrations gave them.
    private static async Task<List<(string From, string To)>> IndexNamesAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("""
            select n.relname, l.relname
            from pg_index ni join pg_class n on n.oid = ni.indexrelid
            join pg_index li on li.indrelid = $2::regclass and li.indkey::text = ni.indkey::text and li.indclass::text = ni.indclass::text
                and li.indisunique = ni.indisunique and li.indisprimary = ni.indisprimary
            join pg_class l on l.oid = li.indexrelid
            where ni.indrelid = $1::regclass
            """, connection, transaction);
        command.Parameters.Add(new() { Value = RecordStore.Next });
        command.Parameters.Add(new() { Value = RecordStore.Live });
        var names = new List<(string, string)>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            names.Add((reader.GetString(0), reader.GetString(1)));
        }

        return names;
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}
