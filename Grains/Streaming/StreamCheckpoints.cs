using Npgsql;
using NpgsqlTypes;

namespace PR2.Grains.Streaming;

/// <summary>The delivered version vector of a stream provider, per replica database (<c>pr2_stream_checkpoint</c>).</summary>
public static class StreamCheckpoints
{
    public static async Task<Dictionary<Guid, long>> ReadAsync(NpgsqlDataSource replica, string provider, CancellationToken cancellationToken = default)
    {
        await using var command = replica.CreateCommand("select origin_replica, position from pr2_stream_checkpoint where provider = $1");
        command.Parameters.Add(new() { Value = provider });
        var vector = new Dictionary<Guid, long>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            vector[reader.GetGuid(0)] = reader.GetInt64(1);
        }

        return vector;
    }

    /// <summary>Moves the checkpoint forward to <paramref name="vector"/> (never back: per origin, the higher position stays).</summary>
    public static async Task WriteAsync(NpgsqlDataSource replica, string provider, IReadOnlyDictionary<Guid, long> vector, CancellationToken cancellationToken = default)
    {
        await using var command = replica.CreateCommand("""
            insert into pr2_stream_checkpoint (provider, origin_replica, position)
            select $1, o, p from unnest($2::uuid[], $3::bigint[]) as v(o, p)
            on conflict (provider, origin_replica) do update
                set position = greatest(pr2_stream_checkpoint.position, excluded.position), updated_at = now()
            """);
        command.Parameters.Add(new() { Value = provider });
        command.Parameters.Add(new() { Value = vector.Keys.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Uuid });
        command.Parameters.Add(new() { Value = vector.Values.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>
    /// Where to start reading <paramref name="replica"/>'s journal so that every entry <paramref name="delivered"/> does
    /// not include is read: just before the first such entry of each origin (one index probe per origin), or the head
    /// when the replica holds nothing new.
    /// </summary>
    public static async Task<long> StartPositionAsync(NpgsqlDataSource replica, IReadOnlyDictionary<Guid, long> delivered, CancellationToken cancellationToken = default)
    {
        var origins = await OriginsAsync(replica, cancellationToken);
        await using var command = replica.CreateCommand("""
            select coalesce(min(first.position) - 1, (select position from pr2_writer_head))
            from unnest($1::uuid[], $2::bigint[]) as v(origin, delivered)
            cross join lateral (select position from pr2_journal j
                                where j.origin_replica = v.origin and j.origin_position > v.delivered
                                order by j.origin_position limit 1) first
            """);
        command.Parameters.Add(new() { Value = origins, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Uuid });
        command.Parameters.Add(new() { Value = origins.Select(o => delivered.GetValueOrDefault(o)).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint });
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    private static async Task<Guid[]> OriginsAsync(NpgsqlDataSource replica, CancellationToken cancellationToken)
    {
        await using var command = replica.CreateCommand("select replica_id from pr2_replica union select origin_replica from pr2_origin_vector");
        var origins = new List<Guid>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            origins.Add(reader.GetGuid(0));
        }

        return [.. origins];
    }
}
