using Npgsql;
using NpgsqlTypes;
using PR2.Grains.Storage;

namespace PR2.Grains.Replication;

/// <summary>
/// One step of anti-entropy: copies to <c>target</c> a batch of the entries <c>source</c> holds above the
/// target's version vector, in origin order. Idempotent and resumable: the target's vector advances in the
/// same transaction as the entries it received, so a crash anywhere just means the next step resends.
/// An entry whose MessageId the target already holds (a batch retried on a new primary got a second
/// origin) is skipped, but the vector still moves past it; if it is stamped lower than the target's copy, the
/// target records the lower stamp (pr2_restamp), so that every replica folds that message at the same stamp.
/// </summary>
public static class ReplicaSync
{
    // Entries travel with their agreed stamps (sql/008), so the lowest stamp of a twice-committed message
    // reaches every replica, whichever path its copies take.
    private const string EntryColumns = """
        message_id, coalesce(r.lamport_counter, j.lamport_counter), coalesce(r.lamport_shard, j.lamport_shard),
        origin_replica, origin_position, actor_id, kind,
        actor_version, body::text, content_hash, sender, caused_by_counter, caused_by_shard, j.recorded_at, hops
        """;

    /// <summary>Copies one batch; returns how many entries the target's vector advanced by (0 = in sync with the source).</summary>
    public static async Task<int> PushAsync(NpgsqlDataSource source, NpgsqlDataSource target, int batchSize = 1000, CancellationToken cancellationToken = default)
    {
        // Compare vectors first (two small reads): in sync means no journal is touched at all.
        // Nothing is locked while the source is read: the source may be slow or gone.
        var seen = await VersionVector.ReadAsync(target, cancellationToken);
        var offered = await VersionVector.ReadAsync(source, cancellationToken);
        var missing = offered.Positions.Where(p => p.Value > seen[p.Key]).Select(p => (Origin: p.Key, From: seen[p.Key], To: p.Value)).ToList();
        if (missing.Count == 0)
        {
            return 0;
        }

        var entries = await ReadRangesAsync(source, missing, batchSize, cancellationToken);
        if (entries.Count == 0)
        {
            return 0;
        }

        await using var connection = await target.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var (position, clock) = await LockHeadAsync(connection, cancellationToken);

        // The target changed meanwhile (its writer or another sync): try again next round.
        if (!(await VersionVector.ReadAsync(connection, cancellationToken)).SameAs(seen))
        {
            return 0;
        }

        var present = await PresentStampsAsync(connection, entries, cancellationToken);
        var fresh = entries.Where(e => !present.ContainsKey(e.MessageId)).ToList();
        if (fresh.Count > 0)
        {
            await InsertAsync(connection, fresh, position, cancellationToken);
        }

        // A message held here already but stamped lower by its other copy: the lower stamp is the one both keep.
        var lower = entries.Where(e => present.TryGetValue(e.MessageId, out var held) && (e.Counter, e.StampShard).CompareTo(held) < 0).ToList();
        if (lower.Count > 0)
        {
            await RestampAsync(connection, lower, cancellationToken);
        }

        // Lamport receive rule: the target's clock never falls behind a stamp it holds.
        var newClock = Math.Max(clock, entries.Max(e => e.Counter));
        await using (var head = new NpgsqlCommand("update pr2_writer_head set position = $1, clock = $2, updated_at = now()", connection))
        {
            head.Parameters.Add(new() { Value = position + fresh.Count });
            head.Parameters.Add(new() { Value = newClock });
            await head.ExecuteNonQueryAsync(cancellationToken);
        }

        var advanced = entries.GroupBy(e => e.Origin).Select(g => (Origin: g.Key, Position: g.Max(e => e.OriginPosition))).ToList();
        await using (var vector = new NpgsqlCommand("""
            insert into pr2_origin_vector (origin_replica, position)
            select * from unnest($1::uuid[], $2::bigint[])
            on conflict (origin_replica) do update set position = excluded.position, updated_at = now()
            """, connection))
        {
            vector.Parameters.Add(JournalStore.Array(advanced.Select(a => a.Origin).ToArray(), NpgsqlDbType.Uuid));
            vector.Parameters.Add(JournalStore.Array(advanced.Select(a => a.Position).ToArray(), NpgsqlDbType.Bigint));
            await vector.ExecuteNonQueryAsync(cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        return entries.Count;
    }

    /// <summary>Pushes batches until the target holds everything the source held when it started.</summary>
    public static async Task<long> PushAllAsync(NpgsqlDataSource source, NpgsqlDataSource target, int batchSize = 1000, CancellationToken cancellationToken = default)
    {
        long total = 0;
        int moved;
        while ((moved = await PushAsync(source, target, batchSize, cancellationToken)) > 0)
        {
            total += moved;
        }

        return total;
    }

    /// <summary>
    /// Pushes until the target's version vector covers what the source held when it started (a push that gave way to
    /// anti-entropy moving the same entries is pushed again), or until <paramref name="cancellationToken"/> ends it.
    /// </summary>
    public static async Task CopyAllAsync(NpgsqlDataSource source, NpgsqlDataSource target, CancellationToken cancellationToken)
    {
        var wanted = await VersionVector.ReadAsync(source, cancellationToken);
        while (true)
        {
            await PushAllAsync(source, target, cancellationToken: cancellationToken);
            var held = await VersionVector.ReadAsync(target, cancellationToken);
            if (wanted.Positions.All(p => held[p.Key] >= p.Value))
            {
                return;
            }
        }
    }

    // For each origin, the source's entries after the target's position, in origin order (an index range
    // scan on (origin_replica, origin_position)); the source holds each origin contiguously up to its vector.
    private static async Task<List<ImportedEntry>> ReadRangesAsync(NpgsqlDataSource source, List<(Guid Origin, long From, long To)> missing, int batchSize, CancellationToken cancellationToken)
    {
        var entries = new List<ImportedEntry>();
        foreach (var (origin, from, to) in missing)
        {
            if (entries.Count >= batchSize)
            {
                break;
            }

            var limit = batchSize - entries.Count;
            var read = await ReadRangeAsync(source, origin, from, to, limit, sameCommit: false, cancellationToken);
            entries.AddRange(read);
            if (read.Count == limit && read[^1].OriginPosition < to)
            {
                // Cut at the page size: go on to the end of the commit the page stopped in, so that the target takes
                // every commit whole (an atomic batch is never seen in part on a replica either).
                entries.AddRange(await ReadRangeAsync(source, origin, read[^1].OriginPosition, to, JournalStore.MaxCommitTail, sameCommit: true, cancellationToken));
            }
        }

        return entries;
    }

    // One origin's entries after `from` (up to `to`, at most `limit`), contiguous; with sameCommit only those written by
    // the same transaction as the entry at `from` (rows of one transaction share their xmin).
    private static async Task<List<ImportedEntry>> ReadRangeAsync(NpgsqlDataSource source, Guid origin, long from, long to, int limit, bool sameCommit,
        CancellationToken cancellationToken)
    {
        var entries = new List<ImportedEntry>();
        await using var command = source.CreateCommand($"""
            select {EntryColumns} from pr2_journal j left join pr2_restamp r using (message_id)
            where origin_replica = $1 and origin_position > $2 and origin_position <= $3
            {(sameCommit ? "and j.xmin = (select xmin from pr2_journal where origin_replica = $1 and origin_position = $2)" : "")}
            order by origin_position limit $4
            """);
        command.Parameters.Add(new() { Value = origin });
        command.Parameters.Add(new() { Value = from });
        command.Parameters.Add(new() { Value = to });
        command.Parameters.Add(new() { Value = limit });
        var expected = from + 1;
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            var entry = new ImportedEntry(
                reader.GetGuid(0), reader.GetInt64(1), reader.GetInt32(2), reader.GetGuid(3), reader.GetInt64(4),
                reader.GetString(5), reader.GetInt16(6), reader.GetInt64(7), reader.GetString(8), reader.GetFieldValue<byte[]>(9),
                reader.GetString(10), reader.IsDBNull(11) ? null : reader.GetInt64(11), reader.IsDBNull(12) ? null : reader.GetInt32(12),
                reader.GetFieldValue<DateTimeOffset>(13), reader.GetInt16(14));
            if (entry.OriginPosition != expected++)
            {
                break; // never take anything past a gap
            }

            entries.Add(entry);
        }

        return entries;
    }

    private static async Task<(long Position, long Clock)> LockHeadAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        // The same row lock the writer takes: imports and group commits take turns, positions stay contiguous.
        await using var command = new NpgsqlCommand("select position, clock from pr2_writer_head for update", connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return (reader.GetInt64(0), reader.GetInt64(1));
    }

    // The agreed stamps of the offered messages this replica already holds.
    private static async Task<Dictionary<Guid, (long Counter, int Shard)>> PresentStampsAsync(NpgsqlConnection connection, List<ImportedEntry> entries, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("""
            select message_id, coalesce(r.lamport_counter, j.lamport_counter), coalesce(r.lamport_shard, j.lamport_shard)
            from pr2_journal j left join pr2_restamp r using (message_id) where message_id = any($1)
            """, connection);
        command.Parameters.Add(JournalStore.Array(entries.Select(e => e.MessageId).ToArray(), NpgsqlDbType.Uuid));
        var present = new Dictionary<Guid, (long, int)>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            present[reader.GetGuid(0)] = (reader.GetInt64(1), reader.GetInt32(2));
        }

        return present;
    }

    // Rows go in message id order: every statement that locks restamp rows does (RecordsProjector.TakeAllRestamps).
    private static async Task RestampAsync(NpgsqlConnection connection, List<ImportedEntry> entries, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("""
            insert into pr2_restamp (message_id, lamport_counter, lamport_shard)
            select * from unnest($1::uuid[], $2::bigint[], $3::integer[]) order by 1
            on conflict (message_id) do update set lamport_counter = excluded.lamport_counter, lamport_shard = excluded.lamport_shard,
                refolded = false, next_refolded = false, recorded_at = now()
            """, connection);
        command.Parameters.Add(JournalStore.Array(entries.Select(e => e.MessageId).ToArray(), NpgsqlDbType.Uuid));
        command.Parameters.Add(JournalStore.Array(entries.Select(e => e.Counter).ToArray(), NpgsqlDbType.Bigint));
        command.Parameters.Add(JournalStore.Array(entries.Select(e => e.StampShard).ToArray(), NpgsqlDbType.Integer));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task InsertAsync(NpgsqlConnection connection, List<ImportedEntry> entries, long head, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("""
            insert into pr2_journal (position, message_id, lamport_counter, lamport_shard, origin_replica, origin_position,
                                     actor_id, kind, actor_version, body, content_hash, sender, caused_by_counter, caused_by_shard, recorded_at, hops)
            select $1 + e.n, e.message_id, e.counter, e.stamp_shard, e.origin, e.origin_position, e.actor_id, e.kind, e.version,
                   e.body::jsonb, e.hash, e.sender, e.caused_counter, e.caused_shard, e.recorded_at, e.hops
            from unnest($2::uuid[], $3::bigint[], $4::integer[], $5::uuid[], $6::bigint[], $7::text[], $8::smallint[], $9::bigint[],
                        $10::text[], $11::bytea[], $12::text[], $13::bigint[], $14::integer[], $15::timestamptz[], $16::smallint[])
                 with ordinality
                 as e(message_id, counter, stamp_shard, origin, origin_position, actor_id, kind, version,
                      body, hash, sender, caused_counter, caused_shard, recorded_at, hops, n)
            """, connection);
        command.Parameters.Add(new() { Value = head });
        command.Parameters.Add(JournalStore.Array(entries.Select(e => e.MessageId).ToArray(), NpgsqlDbType.Uuid));
        command.Parameters.Add(JournalStore.Array(entries.Select(e => e.Counter).ToArray(), NpgsqlDbType.Bigint));
        command.Parameters.Add(JournalStore.Array(entries.Select(e => e.StampShard).ToArray(), NpgsqlDbType.Integer));
        command.Parameters.Add(JournalStore.Array(entries.Select(e => e.Origin).ToArray(), NpgsqlDbType.Uuid));
        command.Parameters.Add(JournalStore.Array(entries.Select(e => e.OriginPosition).ToArray(), NpgsqlDbType.Bigint));
        command.Parameters.Add(JournalStore.Array(entries.Select(e => e.ActorId).ToArray(), NpgsqlDbType.Text));
        command.Parameters.Add(JournalStore.Array(entries.Select(e => e.Kind).ToArray(), NpgsqlDbType.Smallint));
        command.Parameters.Add(JournalStore.Array(entries.Select(e => e.Version).ToArray(), NpgsqlDbType.Bigint));
        command.Parameters.Add(JournalStore.Array(entries.Select(e => e.Body).ToArray(), NpgsqlDbType.Text));
        command.Parameters.Add(JournalStore.Array(entries.Select(e => e.Hash).ToArray(), NpgsqlDbType.Bytea));
        command.Parameters.Add(JournalStore.Array(entries.Select(e => e.Sender).ToArray(), NpgsqlDbType.Text));
        command.Parameters.Add(JournalStore.Array(entries.Select(e => e.CausedCounter).ToArray(), NpgsqlDbType.Bigint));
        command.Parameters.Add(JournalStore.Array(entries.Select(e => e.CausedShard).ToArray(), NpgsqlDbType.Integer));
        command.Parameters.Add(JournalStore.Array(entries.Select(e => e.RecordedAt).ToArray(), NpgsqlDbType.TimestampTz));
        command.Parameters.Add(JournalStore.Array(entries.Select(e => e.Hops).ToArray(), NpgsqlDbType.Smallint));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private sealed record ImportedEntry(
        Guid MessageId, long Counter, int StampShard, Guid Origin, long OriginPosition, string ActorId, short Kind, long Version,
        string Body, byte[] Hash, string Sender, long? CausedCounter, int? CausedShard, DateTimeOffset RecordedAt, short Hops);
}
