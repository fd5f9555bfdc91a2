using Orleans.Streams;

namespace PR2.Client;

/// <summary>
/// The journal streams (<see cref="Pr2Streams"/>) on an Orleans client: a frontend subscribes explicitly, the silos'
/// readers deliver to it. Clients never read the journals themselves, and the streams are read-only.
/// </summary>
public static class JournalStreamsClientBuilderExtensions
{
    public static IClientBuilder AddPr2JournalStreams(this IClientBuilder client) =>
        client.AddPersistentStreams(Pr2Streams.ProviderName, (_, _) => new SubscribeOnlyAdapterFactory(), stream => { });

    // What a client-side provider needs: a name and an adapter that refuses to produce; queues are the silos' business.
    private sealed class SubscribeOnlyAdapterFactory : IQueueAdapterFactory, IQueueAdapter
    {
        public string Name => Pr2Streams.ProviderName;

        public bool IsRewindable => true;

        public StreamProviderDirection Direction => StreamProviderDirection.ReadOnly;

        public Task<IQueueAdapter> CreateAdapter() => Task.FromResult<IQueueAdapter>(this);

        public IQueueAdapterCache GetQueueAdapterCache() => throw new NotSupportedException("journal streams are read by the silos");

        public IStreamQueueMapper GetStreamQueueMapper() => throw new NotSupportedException("journal streams are read by the silos");

        public Task<IStreamFailureHandler> GetDeliveryFailureHandler(QueueId queueId) => Task.FromResult<IStreamFailureHandler>(new NoOpStreamDeliveryFailureHandler());

        public Task QueueMessageBatchAsync<T>(StreamId streamId, IEnumerable<T> events, StreamSequenceToken? token, Dictionary<string, object>? requestContext) =>
            throw new NotSupportedException($"stream {streamId} is a PR2 journal: it cannot be written to; send messages to actors instead");

        public IQueueAdapterReceiver CreateReceiver(QueueId queueId) => throw new NotSupportedException("journal streams are read by the silos");
    }
}
