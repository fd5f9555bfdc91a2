using Npgsql;
using Orleans.Concurrency;
using PR2.Grains.Records;
using PR2.Grains.Replication;
using PR2.Grains.Storage;
using PR2.Grains.Streaming;

namespace PR2.Grains;

/// <summary>
/// Scans the primary's journal after a position, keeps the entries of the wanted type or actor, and gives each the
/// record as it left it: per actor, its entries up to the last kept position are read once and folded step by step.
/// One snapshot per call, so a page's records agree with each other. A feed goes on page after page, so each
/// activation keeps, per (database, actor), the record as its last page left it (<see cref="FoldedRecords"/>): the next
/// page folds only the actor's new entries onto it, and a hot actor costs per event, not per entry of its history.
/// </summary>
[StatelessWorker]
[Reentrant]
public sealed class ChangeFeedGrain(ShardRegistry shards, TopologyFollower topology) : Grain, IChangeFeedGrain, IIncomingGrainCallFilter
{
    // Every call: a shard added a moment ago on another silo may not have reached this one (the directory says), and a
    // stateless worker lives on after answering "unknown".
    public async Task Invoke(IIncomingGrainCallContext context)
    {
        await topology.KnowsAsync(this.GetPrimaryKeyLong());
        await context.Invoke();
    }

    public const int MaxPage = 1000;

    private const int ScanLimit = 1000;

    private static readonly TimeSpan PrimaryTimeout = TimeSpan.FromSeconds(2);

    private FoldedRecords _folded = new();
    private Guid _foldedFor;

    private int ShardCode => (int)this.GetPrimaryKeyLong();

    public async Task<long> Head()
    {
        try
        {
            return (await JournalStore.ReadHeadAsync(await PrimaryAsync(), ShardCode)).Position;
        }
        catch (NpgsqlException e)
        {
            throw Unavailable(e);
        }
    }

    public Task<ChangePage> Read(long afterPosition, string? type, string? actorId, int limit) =>
        ReadAfter(WatchPosition.At(afterPosition), type, actorId, limit);

    public async Task<WatchPosition> Now()
    {
        try
        {
            var source = await PrimaryAsync();
            await using var connection = await source.OpenConnectionAsync();
            await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead);
            var vector = await VersionVector.ReadAsync(connection);
            await using var command = new NpgsqlCommand("select position from pr2_writer_head", connection);
            var head = (long)(await command.ExecuteScalarAsync())!;
            await transaction.CommitAsync();
            return new WatchPosition(vector.ReplicaId, head, vector.Positions);
        }
        catch (NpgsqlException e)
        {
            throw Unavailable(e);
        }
    }

    public async Task<ChangePage> ReadAfter(WatchPosition after, string? type, string? actorId, int limit)
    {
        shards.Get(ShardCode); // UnknownShard when it is not configured
        if (limit is < 1 or > MaxPage)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, $"limit must be between 1 and {MaxPage}, got {limit}");
        }

        if (actorId is not null && !ActorRef.TryValidate(ShardCode, actorId, out var problem))
        {
            throw new Pr2Exception(ErrorCode.BadActorId, problem);
        }

        try
        {
            var source = await PrimaryAsync();
            var replica = await ReplicaIdAsync(source);
            if (replica != _foldedFor)
            {
                // What was folded is keyed by positions of another journal (another primary, or this database restored).
                _folded = new FoldedRecords();
                _foldedFor = replica;
            }

            // A position is only meaningful on the replica it was read on; on another, start from what was delivered.
            var afterPosition = after.Replica == Guid.Empty || after.Replica == replica
                ? after.Position
                : await StreamCheckpoints.StartPositionAsync(source, after.Delivered);
            // A bare position becomes a place: what this replica holds up to it, so a later change of primary goes on
            // from there instead of from nothing.
            if (after.Replica == Guid.Empty)
            {
                after = new WatchPosition(replica, afterPosition, await DeliveredUpToAsync(source, afterPosition));
            }

            await using var connection = await source.OpenConnectionAsync();
            await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead);
            await _folded.CheckRestampsAsync(source, connection);
            var scanned = await JournalStore.ReadAsync(connection, ShardCode, afterPosition, ScanLimit);
            var matching = scanned
                .Where(e => actorId is not null ? e.Actor.ActorId == actorId : type is null || e.Actor.Type == type).ToList();
            var wanted = matching
                .Where(e => !after.Includes(e.OriginReplica, e.OriginPosition)) // delivered from another replica
                .Take(limit).ToList();
            var nextAfter = wanted.Count == limit ? wanted[^1].Position : scanned.Count > 0 ? scanned[^1].Position : afterPosition;
            var resume = new Dictionary<long, WatchPosition>(wanted.Count);
            var place = new WatchPosition(replica, afterPosition, after.Delivered);
            foreach (var entry in wanted)
            {
                place = place.After(replica, entry.Position, entry.OriginReplica, entry.OriginPosition);
                resume[entry.Position] = place;
            }

            // Fold every matching entry up to the page's end, delivered before or not: one delivered from another
            // replica still changed its actor's record (and the fold cache keeps what is folded here).
            var changes = new List<RecordChange>(wanted.Count);
            foreach (var (entry, state) in await _folded.StatesAsync(source, connection, afterPosition, matching.Where(e => e.Position <= nextAfter).ToList(), ScanLimit))
            {
                if (resume.TryGetValue(entry.Position, out var at))
                {
                    changes.Add(new RecordChange(entry.Position, entry.Stamp, entry.Kind, state.ToRecord(entry.Actor), at));
                }
            }

            await transaction.CommitAsync();
            var atHead = wanted.Count < limit && scanned.Count < ScanLimit;
            // At the head the place covers every entry scanned, wanted or not: a watch that goes live on a journal stream
            // from it (its vector is the stream token) or resumes on another replica needs nothing before it.
            var delivered = atHead ? Max(place.Delivered, await DeliveredUpToAsync(source, nextAfter)) : place.Delivered;
            return new ChangePage(changes.OrderBy(c => c.Position).ToList(), nextAfter, new WatchPosition(replica, nextAfter, delivered), atHead);
        }
        catch (NpgsqlException e)
        {
            throw Unavailable(e);
        }
    }

    private static Dictionary<Guid, long> Max(IReadOnlyDictionary<Guid, long> a, IReadOnlyDictionary<Guid, long> b)
    {
        var max = new Dictionary<Guid, long>(a);
        foreach (var (origin, position) in b)
        {
            max[origin] = Math.Max(position, max.GetValueOrDefault(origin));
        }

        return max;
    }

    // Per origin, the origin position of its last entry at or before the position (entries of one origin are in origin order).
    private static async Task<Dictionary<Guid, long>> DeliveredUpToAsync(NpgsqlDataSource source, long position)
    {
        await using var command = source.CreateCommand("""
            select o.origin, last.origin_position
            from (select replica_id as origin from pr2_replica union select origin_replica from pr2_origin_vector) o
            cross join lateral (select origin_position from pr2_journal j
                                where j.origin_replica = o.origin and j.position <= $1
                                order by j.origin_position desc limit 1) last
            """);
        command.Parameters.Add(new() { Value = position });
        var delivered = new Dictionary<Guid, long>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            delivered[reader.GetGuid(0)] = reader.GetInt64(1);
        }

        return delivered;
    }

    // Read each time, not kept: a replica restored from a backup is the same database name with another identity.
    private static async Task<Guid> ReplicaIdAsync(NpgsqlDataSource source)
    {
        await using var command = source.CreateCommand("select replica_id from pr2_replica");
        return (Guid)(await command.ExecuteScalarAsync())!;
    }

    private async Task<NpgsqlDataSource> PrimaryAsync()
    {
        var set = shards.Get(ShardCode);
        return set.Readers[await CurrentPrimary.AskAsync(GrainFactory, set, PrimaryTimeout)];
    }

    private Pr2Exception Unavailable(NpgsqlException e) => new(ErrorCode.ShardUnavailable, $"shard {ShardCode} primary is unavailable ({DatabaseFailure.Describe(e)}); retry");
}
