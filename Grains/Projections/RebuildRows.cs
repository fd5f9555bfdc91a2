using Npgsql;
using PR2.Grains.Storage;

namespace PR2.Grains.Projections;

/// <summary>
/// The rebuild rows of a replica (<c>pr2_projection_rebuild</c>, one per rebuilt projection: sql/019, 020, 021) and the
/// statements every blue/green rebuild shares: the records view's (<see cref="RecordsRebuild"/>) and a rule's views'
/// (<see cref="RuleViewRebuild"/>).
/// </summary>
internal static class RebuildRows
{
    // Marks and the rebuild's row are held briefly by others (an agent batch, a commit): wait for them a while. Every
    // statement is bounded too: while a swap holds a live mark, the writes or the agent that take it wait.
    public const string LockTimeout = "set local lock_timeout = '1s'; set local statement_timeout = '1s'";

    /// <summary>What the row says of the last rebuild of a projection on this replica.</summary>
    public sealed record Row(long Generation, string State, DateTimeOffset StartedAt, DateTimeOffset? SwappedAt, long? SwappedPosition, string? Error, string? Follows);

    /// <summary>Locks the rows against starts, swaps and cancels of every projection (they are few and brief).</summary>
    public static Task LockAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken) =>
        ExecuteAsync(connection, transaction, "lock table pr2_projection_rebuild in exclusive mode", cancellationToken);

    /// <summary>
    /// The prologue of a start, a swap or a cancel: bounds the transaction's waits (<see cref="LockTimeout"/>), locks the
    /// rows (<see cref="LockAsync"/>) and reads <paramref name="projection"/>'s, null when it has none.
    /// </summary>
    public static async Task<Row?> LockRowAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string projection, CancellationToken cancellationToken)
    {
        await ExecuteAsync(connection, transaction, LockTimeout, cancellationToken);
        await LockAsync(connection, transaction, cancellationToken);
        return await ReadAsync(connection, transaction, projection, cancellationToken);
    }

    /// <summary>As <see cref="LockRowAsync"/>, the row only while its rebuild is building (null: nothing to swap or cancel).</summary>
    public static async Task<Row?> LockBuildingAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string projection, CancellationToken cancellationToken) =>
        await LockRowAsync(connection, transaction, projection, cancellationToken) is { State: "building" } building ? building : null;

    public static async Task<Row?> ReadAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string projection, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            "select generation, state, started_at, swapped_at, swapped_position, last_error, follows from pr2_projection_rebuild where projection = $1",
            connection, transaction);
        command.Parameters.Add(new() { Value = projection });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken)
            ? new Row(reader.GetInt64(0), reader.GetString(1), reader.GetFieldValue<DateTimeOffset>(2),
                reader.IsDBNull(3) ? null : reader.GetFieldValue<DateTimeOffset>(3), reader.IsDBNull(4) ? null : reader.GetInt64(4),
                reader.IsDBNull(5) ? null : reader.GetString(5), reader.IsDBNull(6) ? null : reader.GetString(6))
            : null;
    }

    /// <summary>Whether a rebuild of <paramref name="projection"/> is in progress on this replica.</summary>
    public static async Task<bool> BuildingAsync(NpgsqlDataSource replica, string projection, CancellationToken cancellationToken = default)
    {
        await using var connection = await replica.OpenConnectionAsync(cancellationToken);
        return await ReadAsync(connection, null, projection, cancellationToken) is { State: "building" };
    }

    /// <summary>A new generation, building (<paramref name="follows"/>: what it folds for, when that can change under it).</summary>
    public static async Task<long> StartAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string projection, string? follows, CancellationToken cancellationToken)
    {
        await using var start = new NpgsqlCommand("""
            insert into pr2_projection_rebuild (projection, generation, state, follows) values ($1, 1, 'building', $2)
            on conflict (projection) do update set generation = pr2_projection_rebuild.generation + 1, state = 'building',
                started_at = now(), swapped_at = null, swapped_position = null, last_error = null, follows = $2
            returning generation
            """, connection, transaction);
        start.Parameters.Add(new() { Value = projection });
        start.Parameters.Add(new() { Value = (object?)follows ?? DBNull.Value });
        return (long)(await start.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>The statement that ends a rebuild swapped in at <c>$1</c> (projection <c>$2</c>).</summary>
    public const string Swapped =
        "update pr2_projection_rebuild set state = 'done', swapped_at = now(), swapped_position = $1, last_error = null where projection = $2";

    /// <summary>The statement that ends a rebuild canceled (projection <c>$1</c>, why <c>$2</c>: null when asked for).</summary>
    public const string Canceled = "update pr2_projection_rebuild set state = 'canceled', last_error = $2 where projection = $1";

    /// <summary>Marks the rebuild of <paramref name="projection"/> canceled (<paramref name="why"/>: null when asked for): a fold's next batch then folds nothing.</summary>
    public static async Task MarkCanceledAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string projection, string? why, CancellationToken cancellationToken)
    {
        await using var cancel = new NpgsqlCommand(Canceled, connection, transaction);
        cancel.Parameters.Add(new() { Value = projection });
        cancel.Parameters.Add(new() { Value = (object?)why ?? DBNull.Value });
        await cancel.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>
    /// After a cancel, drops what the fold made (<paramref name="drop"/>, under the fold's mark <paramref name="foldMark"/>)
    /// if that mark is free now. A fold batch holding it is not waited for (that batch may be long): the cleanup is then
    /// left to the next start, which makes the fold's state anew under the mark, and the cancel still commits.
    /// </summary>
    public static Task DropUnlessFoldingAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string foldMark, int shard, Func<Task> drop,
        CancellationToken cancellationToken) =>
        DropUnlessFoldingAsync(connection, transaction, () => LockMarkAsync(connection, transaction, foldMark, shard, cancellationToken), drop, cancellationToken);

    /// <summary>As above, for a fold under several marks, which <paramref name="lockFold"/> locks.</summary>
    public static async Task DropUnlessFoldingAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Func<Task> lockFold, Func<Task> drop,
        CancellationToken cancellationToken)
    {
        const string Savepoint = "cancel_cleanup";
        await transaction.SaveAsync(Savepoint, cancellationToken);
        try
        {
            await ExecuteAsync(connection, transaction, "set local lock_timeout = '200ms'", cancellationToken);
            await lockFold();
            await drop();
            await transaction.ReleaseAsync(Savepoint, cancellationToken);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.LockNotAvailable)
        {
            await transaction.RollbackAsync(Savepoint, cancellationToken);
        }
    }

    /// <summary>
    /// The journal's entries after <paramref name="from"/> up to <paramref name="to"/> (none when <paramref name="to"/> is not
    /// above it), which a swap folds with the marks locked. A hole would swap in a view missing an entry: refused, the message
    /// starting with <paramref name="rebuild"/> (which rebuild, where).
    /// </summary>
    public static async Task<IReadOnlyList<JournalEntry>> ReadGapAsync(NpgsqlConnection connection, int shard, long from, long to, string rebuild,
        CancellationToken cancellationToken)
    {
        if (to <= from)
        {
            return [];
        }

        var entries = await JournalStore.ReadAsync(connection, shard, from, (int)(to - from), withBodies: true, cancellationToken);
        if (entries.Count != to - from || entries[0].Position != from + 1 || entries[^1].Position != to)
        {
            throw new InvalidOperationException($"{rebuild}: the journal does not hold positions {from + 1}..{to} contiguously");
        }

        return entries;
    }

    /// <summary>Records why the last attempt failed, for status (best effort).</summary>
    public static async Task RecordErrorAsync(NpgsqlDataSource replica, string projection, string error, CancellationToken cancellationToken = default)
    {
        await using var command = replica.CreateCommand("update pr2_projection_rebuild set last_error = $1 where projection = $2 and state = 'building'");
        command.Parameters.Add(new() { Value = error });
        command.Parameters.Add(new() { Value = projection });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>
    /// Where this replica's rebuild of <paramref name="projection"/> stands (state "live" when none was ever started): the
    /// live mark <paramref name="liveMark"/>, and while building the shadow's <paramref name="shadowMark"/>, read in one snapshot.
    /// </summary>
    public static async Task<ProjectionReplicaStatus> StatusAsync(NpgsqlDataSource replica, int shard, int replicaIndex, string projection, string liveMark,
        string shadowMark, CancellationToken cancellationToken = default)
    {
        await using var connection = await replica.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken);
        var row = await ReadAsync(connection, transaction, projection, cancellationToken);
        var live = await MarkAsync(connection, transaction, liveMark, shard, cancellationToken);
        var folded = row is { State: "building" } ? await MarkAsync(connection, transaction, shadowMark, shard, cancellationToken) : live;
        await using var headCommand = new NpgsqlCommand("select position from pr2_writer_head", connection, transaction);
        var head = (long)(await headCommand.ExecuteScalarAsync(cancellationToken) ?? 0L);
        await transaction.CommitAsync(cancellationToken);
        return new ProjectionReplicaStatus(replicaIndex, row?.State ?? "live", row?.Generation ?? 0, folded, head, live,
            row?.StartedAt, row?.SwappedAt, row?.SwappedPosition ?? -1, row?.Error);
    }

    /// <summary>Locks an agent's mark row; its position, or null when the agent never ran here.</summary>
    public static async Task<long?> LockMarkAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string agent, int shard, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("select position from pr2_agent_mark where agent = $1 and shard = $2 for update", connection, transaction);
        command.Parameters.Add(new() { Value = agent });
        command.Parameters.Add(new() { Value = shard });
        return (long?)await command.ExecuteScalarAsync(cancellationToken);
    }

    public static async Task<long> MarkAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string agent, int shard, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("select position from pr2_agent_mark where agent = $1 and shard = $2", connection, transaction);
        command.Parameters.Add(new() { Value = agent });
        command.Parameters.Add(new() { Value = shard });
        return (long?)await command.ExecuteScalarAsync(cancellationToken) ?? 0;
    }

    /// <summary>Puts a shadow's mark at <paramref name="position"/> with a new revision (a fold still running meets a mark it never read).</summary>
    public static async Task ResetMarkAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string agent, int shard, long position, CancellationToken cancellationToken)
    {
        await using var reset = new NpgsqlCommand("""
            insert into pr2_agent_mark (agent, shard, position) values ($1, $2, $3)
            on conflict (agent, shard) do update set position = $3, revision = pr2_agent_mark.revision + 1, updated_at = now()
            """, connection, transaction);
        reset.Parameters.Add(new() { Value = agent });
        reset.Parameters.Add(new() { Value = shard });
        reset.Parameters.Add(new() { Value = position });
        await reset.ExecuteNonQueryAsync(cancellationToken);
    }

    public static async Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}
