using Npgsql;
using NpgsqlTypes;
using PR2.Grains.Storage;

namespace PR2.Grains.Replication;

/// <summary>
/// Translates between a replica's journal positions and read tokens (per origin replica, origin positions).
/// Entries of one origin reach a replica in origin order (the writer appends its own in order; anti-entropy
/// ships each origin's entries contiguously), so on any replica an origin's positions rise with the journal.
/// Both questions are backward probes of the (origin_replica, origin_position) index.
/// </summary>
public static class ReadCoverage
{
    /// <summary>The token of what a replica's journal holds up to <paramref name="position"/>: per origin, its last entry there.</summary>
    public static async Task<ReadToken> ReflectedAsync(NpgsqlConnection connection, int shard, long position, CancellationToken cancellationToken = default)
    {
        await using var command = new NpgsqlCommand("""
            select o.origin,
                   coalesce((select j.origin_position from pr2_journal j
                             where j.origin_replica = o.origin and j.position <= $1
                             order by j.origin_position desc limit 1), 0)
            from (select replica_id as origin from pr2_replica union select origin_replica from pr2_origin_vector) o
            """, connection);
        command.Parameters.Add(new() { Value = position });
        var vector = new Dictionary<Guid, long>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            vector[reader.GetGuid(0)] = reader.GetInt64(1);
        }

        return ReadToken.Of(shard, vector);
    }

    /// <summary>
    /// Null when this replica's records view, as of <paramref name="mark"/>, reflects every entry <paramref name="required"/>
    /// names; otherwise what is missing, for the error a reader sees.
    /// </summary>
    public static async Task<string?> MissingAsync(NpgsqlConnection connection, IReadOnlyDictionary<Guid, long> required, long mark, CancellationToken cancellationToken = default)
    {
        var held = await VersionVector.ReadAsync(connection, cancellationToken);
        var lacking = required.Where(r => held[r.Key] < r.Value).ToList();
        if (lacking.Count > 0)
        {
            return $"lacks {lacking.Sum(r => r.Value - held[r.Key])} entries ({string.Join(", ", lacking.Select(r => $"origin {r.Key.ToString()[..8]} has {held[r.Key]} of {r.Value}"))})";
        }

        // Held, but has the records view folded them? The local position of the last required entry of each origin.
        await using var command = new NpgsqlCommand("""
            select coalesce(max(last.position), 0)
            from unnest($1::uuid[], $2::bigint[]) as r(origin, position),
                 lateral (select j.position from pr2_journal j
                          where j.origin_replica = r.origin and j.origin_position <= r.position
                          order by j.origin_position desc limit 1) as last
            """, connection);
        command.Parameters.Add(JournalStore.Array(required.Keys.ToArray(), NpgsqlDbType.Uuid));
        command.Parameters.Add(JournalStore.Array(required.Values.ToArray(), NpgsqlDbType.Bigint));
        var needed = (long)(await command.ExecuteScalarAsync(cancellationToken))!;
        return needed <= mark ? null : $"holds the entries but its records view is at position {mark}, {needed} needed";
    }
}
