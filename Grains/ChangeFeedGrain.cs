using Npgsql;
using Orleans.Concurrency;
using PR2.Grains.Records;
using PR2.Grains.Storage;

namespace PR2.Grains;

/// <summary>
/// Scans the primary's journal after a position, keeps the entries of the wanted type or actor, and gives each the
/// record as it left it: per actor, its entries up to the last kept position are read once and folded step by step.
/// One snapshot per call, so a page's records agree with each other.
/// </summary>
[StatelessWorker]
[Reentrant]
public sealed class ChangeFeedGrain(ShardRegistry shards) : Grain, IChangeFeedGrain
{
    public const int MaxPage = 1000;

    private const int ScanLimit = 1000;

    private static readonly TimeSpan PrimaryTimeout = TimeSpan.FromSeconds(2);

    private int ShardCode => (int)this.GetPrimaryKeyLong();

    public async Task<long> Head()
    {
        CheckShard();
        try
        {
            return (await JournalStore.ReadHeadAsync(await PrimaryAsync(), ShardCode)).Position;
        }
        catch (NpgsqlException e)
        {
            throw Unavailable(e);
        }
    }

    public async Task<ChangePage> Read(long afterPosition, string? type, string? actorId, int limit)
    {
        CheckShard();
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
            await using var connection = await (await PrimaryAsync()).OpenConnectionAsync();
            await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead);
            var scanned = await JournalStore.ReadAsync(connection, ShardCode, afterPosition, ScanLimit);
            var wanted = scanned.Where(e => actorId is not null ? e.Actor.ActorId == actorId : type is null || e.Actor.Type == type).Take(limit).ToList();
            var nextAfter = wanted.Count == limit ? wanted[^1].Position : scanned.Count > 0 ? scanned[^1].Position : afterPosition;
            var changes = new List<RecordChange>(wanted.Count);
            foreach (var actorEntries in wanted.GroupBy(e => e.Actor))
            {
                var history = await JournalStore.ReadActorAsync(connection, actorEntries.Key, actorEntries.Max(e => e.Position));
                foreach (var entry in actorEntries)
                {
                    var record = RecordState.Fold(history.Where(e => e.Position <= entry.Position)).ToRecord(entry.Actor);
                    changes.Add(new RecordChange(entry.Position, entry.Stamp, entry.Kind, record));
                }
            }

            await transaction.CommitAsync();
            return new ChangePage(changes.OrderBy(c => c.Position).ToList(), nextAfter);
        }
        catch (NpgsqlException e)
        {
            throw Unavailable(e);
        }
    }

    private async Task<NpgsqlDataSource> PrimaryAsync()
    {
        var set = shards.Get(ShardCode);
        try
        {
            return set.Replicas[await CurrentPrimary.AskAsync(GrainFactory, set, PrimaryTimeout)];
        }
        catch (TimeoutException)
        {
            throw new Pr2Exception(ErrorCode.ShardUnavailable, $"shard {ShardCode} has no primary answering (fail-over in progress?); retry");
        }
    }

    private void CheckShard()
    {
        if (!shards.Contains(ShardCode))
        {
            throw new Pr2Exception(ErrorCode.UnknownShard, $"shard {ShardCode} is not configured; known shards: {string.Join(", ", shards.ShardCodes)}");
        }
    }

    private Pr2Exception Unavailable(NpgsqlException e) => new(ErrorCode.ShardUnavailable, $"shard {ShardCode} primary is unavailable ({e.Message}); retry");
}
