using Microsoft.Extensions.Logging;
using Orleans.Streams;
using PR2.Grains.Storage;

namespace PR2.Grains.Streaming;

/// <summary>
/// The journal streams are read-only: entries are written by sending messages to actors, never by producing events.
/// Rewindable: a subscriber resumes from a <see cref="JournalStreamToken"/>.
/// </summary>
public sealed class JournalQueueAdapter(
    string name, ShardRegistry shards, IGrainFactory grains, ILoggerFactory loggers, Action<QueueId, IReadOnlyDictionary<Guid, long>> readerStarted) : IQueueAdapter
{
    public string Name => name;

    public bool IsRewindable => true;

    public StreamProviderDirection Direction => StreamProviderDirection.ReadOnly;

    public Task QueueMessageBatchAsync<T>(StreamId streamId, IEnumerable<T> events, StreamSequenceToken? token, Dictionary<string, object>? requestContext) =>
        throw new NotSupportedException($"stream {streamId} is a PR2 journal: it cannot be written to; send messages to actors instead");

    public IQueueAdapterReceiver CreateReceiver(QueueId queueId) =>
        new JournalQueueReceiver(name, JournalQueueMapper.ShardOf(queueId), shards, grains, loggers.CreateLogger<JournalQueueReceiver>(),
            checkpoint => readerStarted(queueId, checkpoint));
}
