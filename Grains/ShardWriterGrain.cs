using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Orleans.Concurrency;
using PR2.Grains.Agents;
using PR2.Grains.Configuration;
using PR2.Grains.Storage;
using PR2.Grains.Writing;

namespace PR2.Grains;

/// <summary>
/// Hosts the <see cref="JournalWriter"/> of one shard. Reentrant so that appends from many actors queue
/// up while a group commit is in flight. If another activation takes the shard over, this one is fenced
/// and deactivates; it never reopens, so two activations cannot take turns.
/// </summary>
[Reentrant]
public sealed class ShardWriterGrain(ShardRegistry shards, AgentCatalog agents, IOptions<WriteOptions> options, ILogger<ShardWriterGrain> logger)
    : Grain, IShardWriterGrain
{
    private Task<JournalWriter>? _opening;

    private int ShardCode => (int)this.GetPrimaryKeyLong();

    public async Task<WriteAck> Append(AppendRequest request)
    {
        var writer = await GetWriterAsync();
        try
        {
            return await writer.AppendAsync(request);
        }
        catch (Pr2Exception e) when (e.Code == ErrorCode.WriterFenced)
        {
            DeactivateOnIdle();
            throw;
        }
    }

    public async Task<ShardHead> GetHead()
    {
        try
        {
            return await JournalStore.ReadHeadAsync(shards.Get(ShardCode).Primary, ShardCode);
        }
        catch (NpgsqlException e)
        {
            throw Unavailable(e);
        }
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (_opening is { IsCompletedSuccessfully: true })
        {
            // Commits whatever is still queued before the activation goes away.
            await _opening.Result.DisposeAsync();
        }
    }

    private Task<JournalWriter> GetWriterAsync()
    {
        if (_opening is null || _opening.IsFaulted)
        {
            _opening = OpenAsync();
        }

        return _opening;
    }

    private async Task<JournalWriter> OpenAsync()
    {
        var primary = shards.Get(ShardCode).Primary;
        try
        {
            // Followers of this shard are woken after every commit (one-way calls), so they see new entries promptly.
            var followers = agents.KeysFollowing(ShardCode).Select(key => GrainFactory.GetGrain<IAgentGrain>(key)).ToList();
            var antiEntropy = shards.Get(ShardCode).Replicas.Count > 1 ? GrainFactory.GetGrain<IAntiEntropyGrain>(ShardCode) : null;
            return await JournalWriter.OpenAsync(ShardCode, primary, options.Value.MaxBatchSize, logger, _ =>
            {
                followers.ForEach(f => f.Wake());
                antiEntropy?.Wake();
            });
        }
        catch (NpgsqlException e)
        {
            throw Unavailable(e);
        }
    }

    private Pr2Exception Unavailable(NpgsqlException e) =>
        new(ErrorCode.ShardUnavailable, $"shard {ShardCode} primary is unavailable ({e.Message}); retry with the same MessageId");
}
