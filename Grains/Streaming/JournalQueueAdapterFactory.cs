using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.Streams;
using PR2.Grains.Storage;

namespace PR2.Grains.Streaming;

/// <summary>Puts the journal stream provider together: one queue, receiver and cache per shard.</summary>
public sealed class JournalQueueAdapterFactory(string name, ShardRegistry shards, IGrainFactory grains, ILoggerFactory loggers)
    : IQueueAdapterFactory, IQueueAdapterCache
{
    private readonly JournalQueueMapper _mapper = new(shards);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<QueueId, JournalQueueCache> _caches = new();

    public static JournalQueueAdapterFactory Create(IServiceProvider services, string name) =>
        ActivatorUtilities.CreateInstance<JournalQueueAdapterFactory>(services, name);

    public Task<IQueueAdapter> CreateAdapter() => Task.FromResult<IQueueAdapter>(new JournalQueueAdapter(name, shards, grains, loggers, ReaderStarted));

    public IQueueAdapterCache GetQueueAdapterCache() => this;

    public IStreamQueueMapper GetStreamQueueMapper() => _mapper;

    public Task<IStreamFailureHandler> GetDeliveryFailureHandler(QueueId queueId) => Task.FromResult<IStreamFailureHandler>(new NoOpStreamDeliveryFailureHandler());

    public IQueueCache CreateQueueCache(QueueId queueId) => _caches[queueId] = new JournalQueueCache(loggers.CreateLogger<JournalQueueCache>());

    // A queue's reader starts from the provider's checkpoint: what that includes is not in this silo's new cache, so a
    // subscriber whose token lacks any of it is told (DataNotAvailable) instead of being resumed past a gap.
    private void ReaderStarted(QueueId queueId, IReadOnlyDictionary<Guid, long> checkpoint)
    {
        if (_caches.TryGetValue(queueId, out var cache))
        {
            cache.StartsAfter(checkpoint);
        }
    }
}
