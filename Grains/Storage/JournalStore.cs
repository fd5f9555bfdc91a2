using Npgsql;
using NpgsqlTypes;

namespace PR2.Grains.Storage;

/// <summary>
/// Reads of one replica's journal. Writes go only through <see cref="Writing.JournalWriter"/>.
/// </summary>
public static class JournalStore
{
    // Every read sees each message's agreed stamp: the lower one recorded in pr2_restamp when this replica's own
    // copy was stamped higher (see sql/008). Output names match the columns, so ORDER BY uses the agreed stamp.
    private const string EntryColumns = """
        position, message_id, coalesce(r.lamport_counter, j.lamport_counter) as lamport_counter,
        coalesce(r.lamport_shard, j.lamport_shard) as lamport_shard, origin_replica, origin_position,
        actor_id, kind, actor_version, body::text, sender, caused_by_counter, caused_by_shard, j.recorded_at, content_hash, hops
        """;

    // The same columns with an empty body, for readers that never look at it (no jsonb to text, nothing to transfer).
    private static readonly string HeaderColumns = EntryColumns.Replace("body::text", "''::text as body", StringComparison.Ordinal);

    private const string Journal = "pr2_journal j left join pr2_restamp r using (message_id)";

    /// <summary>Entries with position greater than <paramref name="afterPosition"/>, in position order (with empty bodies unless <paramref name="withBodies"/>).</summary>
    public static async Task<IReadOnlyList<JournalEntry>> ReadAsync(NpgsqlDataSource source, int shard, long afterPosition, int limit, bool withBodies = true, CancellationToken cancellationToken = default)
    {
        await using var command = source.CreateCommand($"select {(withBodies ? EntryColumns : HeaderColumns)} from {Journal} where position > $1 order by position limit $2");
        command.Parameters.Add(new() { Value = afterPosition });
        command.Parameters.Add(new() { Value = limit });
        return await ReadEntriesAsync(command, shard, cancellationToken);
    }

    /// <summary>Entries after <paramref name="afterPosition"/>, read on an open connection (inside its transaction).</summary>
    public static async Task<IReadOnlyList<JournalEntry>> ReadAsync(NpgsqlConnection connection, int shard, long afterPosition, int limit, bool withBodies = true, CancellationToken cancellationToken = default)
    {
        await using var command = new NpgsqlCommand($"select {(withBodies ? EntryColumns : HeaderColumns)} from {Journal} where position > $1 order by position limit $2", connection);
        command.Parameters.Add(new() { Value = afterPosition });
        command.Parameters.Add(new() { Value = limit });
        return await ReadEntriesAsync(command, shard, cancellationToken);
    }

    /// <summary>Most entries <see cref="ReadRestOfCommitAsync(NpgsqlDataSource, int, long, long, bool, CancellationToken)"/> adds to a page.</summary>
    public const int MaxCommitTail = 20_000;

    /// <summary>
    /// The entries after <paramref name="lastPosition"/> (up to <paramref name="bound"/>) that were written by the same
    /// transaction as the entry there: what a page ending at <paramref name="lastPosition"/> needs so that it does not
    /// end inside a commit (an atomic batch is seen whole or not at all). Rows of one transaction share their
    /// <c>xmin</c>, and a commit's entries take consecutive positions (a group commit, or an anti-entropy import).
    /// </summary>
    public static async Task<IReadOnlyList<JournalEntry>> ReadRestOfCommitAsync(NpgsqlDataSource source, int shard, long lastPosition, long bound,
        bool withBodies = true, CancellationToken cancellationToken = default)
    {
        await using var connection = await source.OpenConnectionAsync(cancellationToken);
        return await ReadRestOfCommitAsync(connection, shard, lastPosition, bound, withBodies, cancellationToken);
    }

    /// <summary><see cref="ReadRestOfCommitAsync(NpgsqlDataSource, int, long, long, bool, CancellationToken)"/> on an open connection.</summary>
    public static async Task<IReadOnlyList<JournalEntry>> ReadRestOfCommitAsync(NpgsqlConnection connection, int shard, long lastPosition, long bound,
        bool withBodies = true, CancellationToken cancellationToken = default)
    {
        await using var command = new NpgsqlCommand($"""
            select {(withBodies ? EntryColumns : HeaderColumns)} from {Journal}
            where position > $1 and position <= least($2, $1 + {MaxCommitTail}) and j.xmin = (select xmin from pr2_journal where position = $1)
            order by position
            """, connection);
        command.Parameters.Add(new() { Value = lastPosition });
        command.Parameters.Add(new() { Value = bound });
        var rest = await ReadEntriesAsync(command, shard, cancellationToken);
        var contiguous = 0;
        while (contiguous < rest.Count && rest[contiguous].Position == lastPosition + contiguous + 1)
        {
            contiguous++;
        }

        return contiguous == rest.Count ? rest : [.. rest.Take(contiguous)];
    }

    /// <summary>
    /// The inserts and cancels (with empty bodies) after <paramref name="afterPosition"/> up to <paramref name="upToPosition"/>
    /// or the journal's head, whichever is lower, and that bound (<paramref name="afterPosition"/> when nothing was
    /// committed after it). One statement, so one snapshot: entries and the head's move commit together, so every
    /// position up to the bound is there, and the modifies between the entries are neither sent nor decoded.
    /// With <paramref name="commitBound"/>, a bound inside a commit moves on to that commit's end (at most to
    /// <paramref name="commitBound"/>): the page never ends inside an atomic batch.
    /// </summary>
    public static async Task<(long Bound, IReadOnlyList<JournalEntry> Entries)> ReadInsertsAndCancelsAsync(NpgsqlDataSource source, int shard,
        long afterPosition, long upToPosition, CancellationToken cancellationToken = default, long? commitBound = null)
    {
        // kind 2 is modify (MessageKind values are stored, never renumbered). The bound is a one-row subquery with the
        // entries joined to it laterally, so the planner sees one outer row (joined to the head table directly it took
        // the one-row head for thousands of rows and the whole statement for costly enough to compile: 100 ms each).
        // A commit's rows share their xmin and take consecutive positions: its end is the last position with that xmin.
        await using var command = source.CreateCommand($"""
            select e.*, b.bound
            from (select (select greatest(least(position, coalesce(
                              (select max(c.position) from pr2_journal c
                               where c.position >= $2 and c.position <= least($3, $2 + {MaxCommitTail})
                                 and c.xmin = (select x.xmin from pr2_journal x where x.position = $2)), $2)), $1)
                          from pr2_writer_head) as bound) b
            left join lateral (select {HeaderColumns} from {Journal}
                               where j.position > $1 and j.position <= b.bound and j.kind <> 2) e on true
            order by e.position
            """);
        command.Parameters.Add(new() { Value = afterPosition });
        command.Parameters.Add(new() { Value = upToPosition });
        command.Parameters.Add(new() { Value = commitBound ?? upToPosition });
        var entries = new List<JournalEntry>();
        var bound = afterPosition;
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            bound = reader.GetInt64(16);
            if (!reader.IsDBNull(0))
            {
                entries.Add(ReadEntry(reader, shard));
            }
        }

        return (bound, entries);
    }

    /// <summary>One actor's entries up to <paramref name="upToPosition"/>, in Lamport order, on an open connection.</summary>
    public static async Task<IReadOnlyList<JournalEntry>> ReadActorAsync(NpgsqlConnection connection, ActorRef actor, long upToPosition, CancellationToken cancellationToken = default)
    {
        await using var command = new NpgsqlCommand(
            $"select {EntryColumns} from {Journal} where actor_id = $1 and position <= $2 order by lamport_counter, lamport_shard, message_id", connection);
        command.Parameters.Add(new() { Value = actor.ActorId });
        command.Parameters.Add(new() { Value = upToPosition });
        return await ReadEntriesAsync(command, actor.Shard, cancellationToken);
    }

    /// <summary>The entries of several actors of one shard up to <paramref name="upToPosition"/>, each actor's in Lamport order: one query for many.</summary>
    public static async Task<ILookup<string, JournalEntry>> ReadActorsAsync(NpgsqlConnection connection, int shard, IReadOnlyCollection<string> actorIds,
        long upToPosition, CancellationToken cancellationToken = default)
    {
        await using var command = new NpgsqlCommand(
            $"select {EntryColumns} from {Journal} where actor_id = any($1) and position <= $2 order by actor_id, lamport_counter, lamport_shard, message_id", connection);
        command.Parameters.Add(new() { Value = actorIds.ToArray() });
        command.Parameters.Add(new() { Value = upToPosition });
        return (await ReadEntriesAsync(command, shard, cancellationToken)).ToLookup(e => e.Actor.ActorId);
    }

    /// <summary>
    /// One actor's entries at positions after <paramref name="afterPosition"/> up to <paramref name="upToPosition"/>, in
    /// position order: a range of the journal's primary key, so its cost follows the range, not the actor's history.
    /// </summary>
    public static async Task<IReadOnlyList<JournalEntry>> ReadActorBetweenAsync(NpgsqlConnection connection, ActorRef actor, long afterPosition, long upToPosition,
        CancellationToken cancellationToken = default)
    {
        await using var command = new NpgsqlCommand(
            $"select {EntryColumns} from {Journal} where position > $2 and position <= $3 and actor_id = $1 order by position", connection);
        command.Parameters.Add(new() { Value = actor.ActorId });
        command.Parameters.Add(new() { Value = afterPosition });
        command.Parameters.Add(new() { Value = upToPosition });
        return await ReadEntriesAsync(command, actor.Shard, cancellationToken);
    }

    /// <summary>All entries of one actor in Lamport order: what its record folds.</summary>
    public static async Task<IReadOnlyList<JournalEntry>> ReadActorAsync(NpgsqlDataSource source, ActorRef actor, CancellationToken cancellationToken = default)
    {
        await using var command = source.CreateCommand(
            $"select {EntryColumns} from {Journal} where actor_id = $1 order by lamport_counter, lamport_shard, message_id");
        command.Parameters.Add(new() { Value = actor.ActorId });
        return await ReadEntriesAsync(command, actor.Shard, cancellationToken);
    }

    /// <summary>
    /// <see cref="ReadActorAsync(NpgsqlDataSource, ActorRef, CancellationToken)"/> in one round trip with whether the
    /// replica is still a primary (<see cref="IsPrimaryColumn"/>).
    /// </summary>
    public static async Task<(IReadOnlyList<JournalEntry> Entries, bool Primary)> ReadActorOnPrimaryAsync(NpgsqlDataSource source, ActorRef actor, CancellationToken cancellationToken = default)
    {
        await using var connection = await source.OpenConnectionAsync(cancellationToken);
        await using var batch = new NpgsqlBatch(connection)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand($"select {IsPrimaryColumn} from pr2_writer_head"),
                new NpgsqlBatchCommand($"select {EntryColumns} from {Journal} where actor_id = $1 order by lamport_counter, lamport_shard, message_id")
                {
                    Parameters = { new() { Value = actor.ActorId } },
                },
            },
        };
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
        var primary = await reader.ReadAsync(cancellationToken) && reader.GetBoolean(0);
        await reader.NextResultAsync(cancellationToken);
        var entries = new List<JournalEntry>();
        while (await reader.ReadAsync(cancellationToken))
        {
            entries.Add(ReadEntry(reader, actor.Shard));
        }

        return (entries, primary);
    }

    /// <summary><see cref="LatestVersionAsync"/> with whether the replica is still a primary (<see cref="IsPrimaryColumn"/>), in one statement.</summary>
    public static async Task<(long Version, bool Primary)> LatestVersionOnPrimaryAsync(NpgsqlDataSource source, ActorRef actor, CancellationToken cancellationToken = default)
    {
        await using var command = source.CreateCommand(
            $"select coalesce(max(actor_version), 0), (select {IsPrimaryColumn} from pr2_writer_head) from pr2_journal where actor_id = $1");
        command.Parameters.Add(new() { Value = actor.ActorId });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return (reader.GetInt64(0), reader.GetBoolean(1));
    }

    // True on the replica the newest writer term that reached it opened on: a writer that fences replicas raises their
    // epoch, and only the one it opens on gets that term as its primary_term. A replica the primary moved away from (a
    // planned move, a fail-over) reads false from the moment the new writer fenced it, even while it still answers.
    // primary_term 0 is a replica no writer or fence of this version has touched since the column was added (sql/017):
    // read as before it, trusted (a fence marks a replica -1 when it has never been opened on).
    private const string IsPrimaryColumn = "(primary_term = epoch or primary_term = 0)";

    /// <summary>The highest version among an actor's entries (0 when it has none): one index probe.</summary>
    public static async Task<long> LatestVersionAsync(NpgsqlDataSource source, ActorRef actor, CancellationToken cancellationToken = default)
    {
        await using var command = source.CreateCommand("select coalesce(max(actor_version), 0) from pr2_journal where actor_id = $1");
        command.Parameters.Add(new() { Value = actor.ActorId });
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>Which of <paramref name="messageIds"/> the journal holds.</summary>
    public static async Task<HashSet<Guid>> HeldAsync(NpgsqlDataSource source, Guid[] messageIds, CancellationToken cancellationToken = default)
    {
        await using var command = source.CreateCommand("select message_id from pr2_journal where message_id = any($1)");
        command.Parameters.Add(Array(messageIds, NpgsqlTypes.NpgsqlDbType.Uuid));
        var held = new HashSet<Guid>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            held.Add(reader.GetGuid(0));
        }

        return held;
    }

    /// <summary>The entry and content hash stored for a MessageId, or null.</summary>
    public static async Task<(JournalEntry Entry, byte[] ContentHash)?> FindAsync(NpgsqlDataSource source, int shard, Guid messageId, CancellationToken cancellationToken = default)
    {
        await using var command = source.CreateCommand($"select {EntryColumns} from {Journal} where message_id = $1");
        command.Parameters.Add(new() { Value = messageId });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? (ReadEntry(reader, shard), reader.GetFieldValue<byte[]>(14)) : null;
    }

    /// <summary>The committed head of this replica's journal.</summary>
    public static async Task<ShardHead> ReadHeadAsync(NpgsqlDataSource source, int shard, CancellationToken cancellationToken = default)
    {
        await using var command = source.CreateCommand("select position, clock from pr2_writer_head");
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return new ShardHead(shard, reader.GetInt64(0), reader.GetInt64(1));
    }

    /// <summary>The acknowledgement an entry got when it was accepted.</summary>
    /// <summary>
    /// The last position before which every entry of this replica's journal is stamped at or below <paramref name="counter"/>:
    /// where a follower that acts only on entries stamped above it can start (0 for counter 0: the whole journal).
    /// </summary>
    public static async Task<long> PositionBeforeStampAsync(NpgsqlConnection connection, long counter, CancellationToken cancellationToken = default)
    {
        if (counter <= 0)
        {
            return 0;
        }

        await using var command = new NpgsqlCommand("""
            select coalesce((select min(position) - 1 from pr2_journal where lamport_counter > $1), (select coalesce(max(position), 0) from pr2_journal))
            """, connection);
        command.Parameters.Add(new() { Value = counter });
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    public static WriteAck ToAck(JournalEntry entry, bool duplicate) =>
        new(entry.MessageId, entry.Actor, entry.Stamp, entry.Position, entry.Version, duplicate, entry.OriginReplica, entry.OriginPosition);

    private static async Task<IReadOnlyList<JournalEntry>> ReadEntriesAsync(NpgsqlCommand command, int shard, CancellationToken cancellationToken)
    {
        var entries = new List<JournalEntry>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            entries.Add(ReadEntry(reader, shard));
        }

        return entries;
    }

    private static JournalEntry ReadEntry(NpgsqlDataReader reader, int shard) => new(
        Position: reader.GetInt64(0),
        MessageId: reader.GetGuid(1),
        Stamp: new LamportStamp(reader.GetInt64(2), reader.GetInt32(3)),
        OriginReplica: reader.GetGuid(4),
        OriginPosition: reader.GetInt64(5),
        Actor: new ActorRef(shard, reader.GetString(6)),
        Kind: (MessageKind)reader.GetInt16(7),
        Version: reader.GetInt64(8),
        Body: reader.GetString(9),
        Sender: reader.GetString(10),
        CausedBy: reader.IsDBNull(11) ? null : new LamportStamp(reader.GetInt64(11), reader.GetInt32(12)),
        RecordedAt: reader.GetFieldValue<DateTimeOffset>(13),
        Hops: reader.GetInt16(15));

    internal static NpgsqlParameter Array<T>(T[] values, NpgsqlDbType elementType) =>
        new() { Value = values, NpgsqlDbType = NpgsqlDbType.Array | elementType };
}
