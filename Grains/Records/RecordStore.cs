using System.Text.Json.Nodes;
using Npgsql;
using NpgsqlTypes;
using PR2.Grains.Json;
using PR2.Grains.Storage;

namespace PR2.Grains.Records;

/// <summary>Reads and writes the <c>pr2_record</c> view of one replica database (or its shadow while a rebuild fills it).</summary>
public static class RecordStore
{
    /// <summary>The live records view, the one readers see.</summary>
    public const string Live = "pr2_record";

    /// <summary>The shadow a rebuild fills from the journal before it is swapped in (<see cref="Projections.RecordsRebuild"/>).</summary>
    public const string Next = "pr2_record_next";

    private const string Columns = "actor_id, status, version, state::text, first_counter, first_shard, last_counter, last_shard, last_position";

    /// <summary>The records of the actors in $1 (text[]); rows are read with <see cref="ReadRow"/>, the actor id in column 0.</summary>
    public const string SelectByActors = $"select {Columns} from pr2_record where actor_id = any($1)";

    /// <summary>
    /// Takes the live view's share lock as the first statement of a REPEATABLE READ transaction that reads it. A rebuild's
    /// swap replaces the table; a snapshot taken before the swap committed would read the table swapped in without the
    /// rows the swap itself wrote, beside the mark of the old one. LOCK TABLE takes no snapshot, so the transaction's
    /// snapshot comes after any swap it waited for, and no swap completes while the transaction reads.
    /// </summary>
    public static async Task LockLiveAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken = default)
    {
        await using var command = new NpgsqlCommand($"lock table {Live} in access share mode", connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>The stored records of the given actors (missing ones are absent from the result).</summary>
    public static async Task<Dictionary<string, RecordState>> ReadAsync(NpgsqlConnection connection, IReadOnlyCollection<string> actorIds, CancellationToken cancellationToken = default,
        string table = Live)
    {
        await using var command = new NpgsqlCommand(table == Live ? SelectByActors : $"select {Columns} from {table} where actor_id = any($1)", connection);
        command.Parameters.Add(JournalStore.Array(actorIds.ToArray(), NpgsqlDbType.Text));
        var records = new Dictionary<string, RecordState>(StringComparer.Ordinal);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            records[reader.GetString(0)] = ReadRow(reader);
        }

        return records;
    }

    /// <summary>One actor's stored record, or a missing one.</summary>
    public static async Task<RecordState> ReadAsync(NpgsqlDataSource source, string actorId, CancellationToken cancellationToken = default)
    {
        await using var command = source.CreateCommand($"select {Columns} from pr2_record where actor_id = $1");
        command.Parameters.Add(new() { Value = actorId });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? ReadRow(reader) : RecordState.Missing;
    }

    /// <summary>Live records of one type whose state contains <paramref name="contains"/> (jsonb containment), by actor id, read in a transaction.</summary>
    public static async Task<IReadOnlyList<ActorRecord>> FindLiveAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, int shard, string type, JsonObject contains, CancellationToken cancellationToken = default)
    {
        await using var command = new NpgsqlCommand(
            $"select {Columns} from pr2_record where actor_type = $1 and status = 1 and state @> $2::jsonb order by actor_id", connection, transaction);
        command.Parameters.Add(new() { Value = type });
        command.Parameters.Add(new() { Value = contains.ToJsonString() });
        var found = new List<ActorRecord>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            found.Add(ReadRow(reader).ToRecord(new ActorRef(shard, reader.GetString(0))));
        }

        return found;
    }

    /// <summary>Records of one type (any status but missing) whose state contains <paramref name="contains"/> (all when null), by actor id, after <paramref name="afterActorId"/>.</summary>
    public static async Task<List<(string ActorId, RecordState State)>> QueryAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string type, string? contains, string afterActorId, int limit, CancellationToken cancellationToken = default)
    {
        await using var command = new NpgsqlCommand($"""
            select {Columns} from pr2_record
            where actor_type = $1 and status in (1, 2) and ($2::jsonb is null or state @> $2::jsonb) and actor_id > $3
            order by actor_id limit $4
            """, connection, transaction);
        command.Parameters.Add(new() { Value = type });
        command.Parameters.Add(new() { Value = (object?)contains ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(new() { Value = afterActorId });
        command.Parameters.Add(new() { Value = limit });
        var found = new List<(string, RecordState)>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            found.Add((reader.GetString(0), ReadRow(reader)));
        }

        return found;
    }

    /// <summary>Inserts or replaces the given records (none of them may be missing).</summary>
    public static async Task UpsertAsync(NpgsqlConnection connection, IReadOnlyDictionary<string, RecordState> records, CancellationToken cancellationToken = default,
        string table = Live)
    {
        if (records.Count == 0)
        {
            return;
        }

        await using var batch = new NpgsqlBatch(connection) { BatchCommands = { Upsert(records, table) } };
        await batch.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>The statement that inserts or replaces the given records, to run in a batch of the caller's.</summary>
    public static NpgsqlBatchCommand Upsert(IReadOnlyDictionary<string, RecordState> records, string table = Live)
    {
        var rows = records.ToList();
        return new NpgsqlBatchCommand($"""
            insert into {table} (actor_id, actor_type, status, version, state, first_counter, first_shard,
                                    last_counter, last_shard, last_position)
            select r.actor_id, split_part(r.actor_id, '/', 1), r.status, r.version, r.state::jsonb, r.first_counter, r.first_shard,
                   r.last_counter, r.last_shard, r.last_position
            from unnest($1::text[], $2::smallint[], $3::bigint[], $4::text[], $5::bigint[], $6::integer[],
                        $7::bigint[], $8::integer[], $9::bigint[])
                 as r(actor_id, status, version, state, first_counter, first_shard, last_counter, last_shard, last_position)
            on conflict (actor_id) do update set
                status = excluded.status, version = excluded.version, state = excluded.state,
                first_counter = excluded.first_counter, first_shard = excluded.first_shard,
                last_counter = excluded.last_counter, last_shard = excluded.last_shard,
                last_position = excluded.last_position, updated_at = now()
            """)
        {
            Parameters =
            {
                JournalStore.Array(rows.Select(r => r.Key).ToArray(), NpgsqlDbType.Text),
                JournalStore.Array(rows.Select(r => (short)r.Value.Status).ToArray(), NpgsqlDbType.Smallint),
                JournalStore.Array(rows.Select(r => r.Value.Version).ToArray(), NpgsqlDbType.Bigint),
                JournalStore.Array(rows.Select(r => r.Value.State).ToArray(), NpgsqlDbType.Text),
                JournalStore.Array(rows.Select(r => r.Value.FirstStamp!.Value.Counter).ToArray(), NpgsqlDbType.Bigint),
                JournalStore.Array(rows.Select(r => r.Value.FirstStamp!.Value.Shard).ToArray(), NpgsqlDbType.Integer),
                JournalStore.Array(rows.Select(r => r.Value.LastStamp!.Value.Counter).ToArray(), NpgsqlDbType.Bigint),
                JournalStore.Array(rows.Select(r => r.Value.LastStamp!.Value.Shard).ToArray(), NpgsqlDbType.Integer),
                JournalStore.Array(rows.Select(r => r.Value.LastPosition).ToArray(), NpgsqlDbType.Bigint),
            },
        };
    }

    /// <summary>The record in the current row of a select of this class's columns.</summary>
    public static RecordState ReadRow(NpgsqlDataReader reader) => new(
        Status: (RecordStatus)reader.GetInt16(1),
        Version: reader.GetInt64(2),
        State: reader.IsDBNull(3) ? null : CanonicalJson.Compact(reader.GetString(3)),
        FirstStamp: new LamportStamp(reader.GetInt64(4), reader.GetInt32(5)),
        LastStamp: new LamportStamp(reader.GetInt64(6), reader.GetInt32(7)),
        LastPosition: reader.GetInt64(8));
}
