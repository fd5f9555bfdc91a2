using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.Streams;
using PR2.Grains.Storage;

namespace PR2.Grains.Streaming;

/// <summary>Puts the journal stream provider together: one queue, receiver and cache per shard.</summary>
public sealed class JournalQueueAdapterFactory(string name, ShardRegistry shards, IGrainFactory grains, ILoggerFactory loggers)
    : IQueueAdapterFactory, IQueueAdapterCache
{
    private readonly JournalQueueMapper _mapper = new(shards.ShardCodes);

    public static JournalQueueAdapterFactory Create(IServiceProvider services, string name) =>
        ActivatorUtilities.CreateInstance<JournalQueueAdapterFactory>(services, name);

    public Task<IQueueAdapter> CreateAdapter() => Task.FromResult<IQueueAdapter>(new JournalQueueAdapter(name, shards, grains, loggers));

    public IQueueAdapterCache GetQueueAdapterCache() => this;

    public IStreamQueueMapper GetStreamQueueMapper() => _mapper;

    public Task<IStreamFailureHandler> GetDeliveryFailureHandler(QueueId queueId) => Task.FromResult<IStreamFailureHandler>(new NoOpStreamDeliveryFailureHandler());

    public IQueueCache CreateQueueCache(QueueId queueId) => new JournalQueueCache(loggers.CreateLogger<JournalQueueCache>());
}
