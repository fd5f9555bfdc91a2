using Npgsql;
using PR2.Grains.Storage;

namespace PR2.Grains.Replication;

/// <summary>
/// Per origin replica, the highest origin position a replica holds contiguously. Anti-entropy sends a
/// peer every entry above the peer's vector; two replicas with equal vectors hold the same entries.
/// </summary>
public sealed class VersionVector
{
    private readonly Dictionary<Guid, long> _positions;

    private VersionVector(Guid replicaId, Dictionary<Guid, long> positions)
    {
        ReplicaId = replicaId;
        _positions = positions;
    }

    /// <summary>The replica this vector describes (its own origin id).</summary>
    public Guid ReplicaId { get; }

    public IReadOnlyDictionary<Guid, long> Positions => _positions;

    public long this[Guid origin] => _positions.GetValueOrDefault(origin);

    /// <summary>Reads a replica's vector: its own origin from the writer head, the others from pr2_origin_vector.</summary>
    public static async Task<VersionVector> ReadAsync(NpgsqlConnection connection, CancellationToken cancellationToken = default) =>
        (await ReadWithEpochAsync(connection, cancellationToken)).Vector;

    /// <summary>
    /// The vector and the writer epoch (the newest writer term that fenced this replica), read in one statement, so one
    /// snapshot: the entries the vector counts were there before any fence newer than that epoch.
    /// </summary>
    public static async Task<(VersionVector Vector, long Epoch)> ReadWithEpochAsync(NpgsqlConnection connection, CancellationToken cancellationToken = default)
    {
        var (vector, epoch, _) = await ReadAsync(connection, "0::bigint", cancellationToken);
        return (vector, epoch);
    }

    /// <summary>
    /// <see cref="ReadWithEpochAsync(NpgsqlConnection, CancellationToken)"/>, with the term of the last writer that opened
    /// on this replica as its primary (0 when none has).
    /// </summary>
    public static async Task<(VersionVector Vector, long Epoch, long PrimaryTerm)> ReadWithTermsAsync(NpgsqlConnection connection, CancellationToken cancellationToken = default)
    {
        try
        {
            return await ReadAsync(connection, "h.primary_term", cancellationToken);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedColumn)
        {
            // A replica that was down while silos applied sql/017 gets it shortly after it returns; until then it is read
            // as before (no writer opened on it with a term), not taken for unreachable.
            return await ReadAsync(connection, "0::bigint", cancellationToken);
        }
    }

    private static async Task<(VersionVector Vector, long Epoch, long PrimaryTerm)> ReadAsync(NpgsqlConnection connection, string primaryTermColumn, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand($"""
            select r.replica_id, h.origin_position, h.epoch, {primaryTermColumn} from pr2_replica r, pr2_writer_head h
            union all
            select origin_replica, position, null, null from pr2_origin_vector
            """, connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken) || reader.IsDBNull(2))
        {
            throw new ReplicaNotReadyException($"database '{connection.Database}' is not claimed as a replica yet (its schema is being applied)");
        }

        var replicaId = reader.GetGuid(0);
        var (epoch, primaryTerm) = (reader.GetInt64(2), reader.GetInt64(3));
        var positions = new Dictionary<Guid, long> { [replicaId] = reader.GetInt64(1) };
        while (await reader.ReadAsync(cancellationToken))
        {
            positions[reader.GetGuid(0)] = reader.GetInt64(1);
        }

        return (new VersionVector(replicaId, positions), epoch, primaryTerm);
    }

    public static async Task<(VersionVector Vector, long Epoch, long PrimaryTerm)> ReadWithTermsAsync(NpgsqlDataSource replica, CancellationToken cancellationToken = default)
    {
        await using var connection = await replica.OpenConnectionAsync(cancellationToken);
        return await ReadWithTermsAsync(connection, cancellationToken);
    }

    public static async Task<(VersionVector Vector, long Epoch)> ReadWithEpochAsync(NpgsqlDataSource replica, CancellationToken cancellationToken = default)
    {
        await using var connection = await replica.OpenConnectionAsync(cancellationToken);
        return await ReadWithEpochAsync(connection, cancellationToken);
    }

    public static async Task<VersionVector> ReadAsync(NpgsqlDataSource replica, CancellationToken cancellationToken = default)
    {
        await using var connection = await replica.OpenConnectionAsync(cancellationToken);
        return await ReadAsync(connection, cancellationToken);
    }

    /// <summary>How many entries this replica lacks compared with <paramref name="other"/>.</summary>
    public long Behind(VersionVector other) => other._positions.Sum(p => Math.Max(0, p.Value - this[p.Key]));

    /// <summary>Equal when every origin has the same position (absent counts as 0).</summary>
    public bool SameAs(VersionVector other) =>
        _positions.Keys.Union(other._positions.Keys).All(origin => this[origin] == other[origin]);

    public override string ToString() =>
        string.Join(", ", _positions.Where(p => p.Value > 0).OrderBy(p => p.Key).Select(p => $"{p.Key.ToString()[..8]}:{p.Value}"));
}
