using Orleans.Streams;

namespace PR2.Grains.Streaming;

/// <summary>Adds the shard journals as Orleans streams (<see cref="Pr2Streams"/>) to a silo.</summary>
public static class JournalStreamsSiloBuilderExtensions
{
    public static ISiloBuilder AddPr2JournalStreams(this ISiloBuilder silo)
    {
        silo.AddPersistentStreams(Pr2Streams.ProviderName, JournalQueueAdapterFactory.Create, stream =>
        {
            // Implicit subscribers ([ImplicitStreamSubscription("pr2/<type>")]) and explicit ones (state in "PubSubStore").
            stream.ConfigureStreamPubSub(StreamPubSubType.ExplicitGrainBasedAndImplicit);
            // One queue per shard, handed to one silo; a shard added at runtime gets its queue when the silo learns of it.
            stream.ConfigurePartitionBalancing(ShardQueueBalancer.Create);
            // One indexed range read per shard per period, whatever the number of subscribers.
            // At least once: a delivery that keeps failing is retried (with backoff) until it succeeds, never skipped after a
            // time limit; the entries behind it wait, and the shard's cache stops reading when full.
            // Retries come back within seconds of a fault healing (Orleans' defaults wait up to 30 s per delivery).
            stream.ConfigureBackoffProvider((_, _) => (Orleans.Runtime.Providers.IMessageDeliveryBackoffProvider)new StreamRetryBackoff());
            stream.ConfigureBackoffProvider((_, _) => (Orleans.Runtime.Providers.IQueueReaderBackoffProvider)new StreamRetryBackoff());
            stream.ConfigurePullingAgent(options => options.Configure(o =>
            {
                o.GetQueueMsgsTimerPeriod = TimeSpan.FromMilliseconds(50);
                o.MaxEventDeliveryTime = Timeout.InfiniteTimeSpan;
                // Up to 100 entries per delivery call: one Orleans call per entry and subscriber does not keep up at
                // thousands of entries a second on two cores.
                o.BatchContainerBatchSize = 100;
            }));
        });
        return silo;
    }
}
