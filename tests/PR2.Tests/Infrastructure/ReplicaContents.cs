using Npgsql;

namespace PR2.Tests.Infrastructure;

/// <summary>What a replica database holds, read straight from PostgreSQL, for comparing replicas.</summary>
public static class ReplicaContents
{
    /// <summary>How many entries of <paramref name="database"/>'s journal carry <paramref name="messageId"/> (0 or 1).</summary>
    public static async Task<long> CountAsync(NpgsqlDataSource database, Guid messageId)
    {
        await using var command = database.CreateCommand("select count(*) from pr2_journal where message_id = $1");
        command.Parameters.Add(new NpgsqlParameter { Value = messageId });
        return (long)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>Every MessageId in the replica's journal (duplicates kept, so a count shows them).</summary>
    public static async Task<List<Guid>> MessageIdsAsync(NpgsqlDataSource database)
    {
        var ids = new List<Guid>();
        await using var command = database.CreateCommand("select message_id from pr2_journal order by message_id");
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            ids.Add(reader.GetGuid(0));
        }

        return ids;
    }

    /// <summary>The MessageIds of one actor type in the replica's journal, in journal (position) order.</summary>
    public static async Task<List<Guid>> MessageIdsOfTypeAsync(NpgsqlDataSource database, string actorType)
    {
        var ids = new List<Guid>();
        await using var command = database.CreateCommand("select message_id from pr2_journal where actor_type = $1 order by position");
        command.Parameters.Add(new NpgsqlParameter { Value = actorType });
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            ids.Add(reader.GetGuid(0));
        }

        return ids;
    }

    /// <summary>The entries of one actor type in the replica's journal by MessageId, in journal (position) order.</summary>
    public static async Task<Dictionary<Guid, JournalRow>> EntriesOfTypeAsync(NpgsqlDataSource database, string actorType)
    {
        var entries = new Dictionary<Guid, JournalRow>();
        await using var command = database.CreateCommand("""
            select message_id, actor_id, actor_version, origin_replica, origin_position from pr2_journal where actor_type = $1 order by position
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = actorType });
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            entries.Add(reader.GetGuid(0), new JournalRow(reader.GetString(1), reader.GetInt64(2), reader.GetGuid(3), reader.GetInt64(4)));
        }

        return entries;
    }

    /// <summary>Each message's stamp as the replicas agreed on it: the lower one recorded in pr2_restamp, if any.</summary>
    public static async Task<Dictionary<Guid, LamportStamp>> StampsAsync(NpgsqlDataSource database)
    {
        var stamps = new Dictionary<Guid, LamportStamp>();
        await using var command = database.CreateCommand("""
            select j.message_id, coalesce(r.lamport_counter, j.lamport_counter), coalesce(r.lamport_shard, j.lamport_shard)
            from pr2_journal j left join pr2_restamp r using (message_id)
            """);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            stamps[reader.GetGuid(0)] = new LamportStamp(reader.GetInt64(1), reader.GetInt32(2));
        }

        return stamps;
    }

    /// <summary>
    /// The records view as one text line per actor. Local positions differ between replicas that received
    /// entries in different orders, so they are left out unless <paramref name="withPosition"/>.
    /// </summary>
    public static async Task<List<string>> RecordsAsync(NpgsqlDataSource database, bool withPosition = false)
    {
        var rows = new List<string>();
        await using var command = database.CreateCommand($"""
            select concat_ws('|', actor_id, status, version, state::text, first_counter, first_shard, last_counter, last_shard{(withPosition ? ", last_position" : "")})
            from pr2_record order by actor_id
            """);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            rows.Add(reader.GetString(0));
        }

        return rows;
    }
}
