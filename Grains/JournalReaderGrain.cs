using Npgsql;
using Orleans.Concurrency;
using PR2.Grains.Storage;

namespace PR2.Grains;

/// <summary>Pages through a shard's journal.</summary>
[StatelessWorker]
public sealed class JournalReaderGrain(ShardRegistry shards, TopologyFollower topology) : Grain, IJournalReaderGrain, IIncomingGrainCallFilter
{
    // Every call: a shard added a moment ago on another silo may not have reached this one (the directory says), and a
    // stateless worker lives on after answering "unknown".
    public async Task Invoke(IIncomingGrainCallContext context)
    {
        await topology.KnowsAsync(this.GetPrimaryKeyLong());
        await context.Invoke();
    }

    /// <summary>The largest page one call returns.</summary>
    public const int MaxPage = 1000;

    public async Task<IReadOnlyList<JournalEntry>> Read(long fromPosition, int limit)
    {
        var shard = (int)this.GetPrimaryKeyLong();
        if (limit is < 1 or > MaxPage)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, $"limit must be between 1 and {MaxPage}, got {limit}");
        }

        try
        {
            var set = shards.Get(shard);
            var primary = set.Readers[await CurrentPrimary.AskAsync(GrainFactory, set, TimeSpan.FromSeconds(2))];
            return await JournalStore.ReadAsync(primary, shard, Math.Max(0, fromPosition - 1), limit);
        }
        catch (NpgsqlException e)
        {
            throw new Pr2Exception(ErrorCode.ShardUnavailable, $"shard {shard} primary is unavailable ({DatabaseFailure.Describe(e)})");
        }
    }
}
