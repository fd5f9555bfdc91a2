using Orleans.Placement;
using PR2.Silo;

namespace PR2.Tests.Streams;

/// <summary>Keeps every <c>pr2/bulk</c> entry of its shard (JournalStreamWorkloadTests).</summary>
[ImplicitStreamSubscription("pr2/bulk")]
[RandomPlacement] // the test places one on the silo it kills by activating until one lands there
public sealed class BulkSubscriberGrain(
    [PersistentState("subscriber", SiloHostingExtensions.GrainStorageName)] IPersistentState<SubscriberState> state, ILocalSiloDetails silo, Microsoft.Extensions.Configuration.IConfiguration configuration)
    : TokenKeepingSubscriber(state, silo, configuration), IBulkSubscriberGrain;
