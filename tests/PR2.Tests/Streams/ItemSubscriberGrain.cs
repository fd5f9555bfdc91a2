using PR2.Silo;

namespace PR2.Tests.Streams;

/// <summary>Keeps every <c>pr2/item</c> entry of its shard, through the fault suite's faults (FaultSuiteTests).</summary>
[ImplicitStreamSubscription("pr2/item")]
public sealed class ItemSubscriberGrain(
    [PersistentState("subscriber", SiloHostingExtensions.GrainStorageName)] IPersistentState<SubscriberState> state, ILocalSiloDetails silo, Microsoft.Extensions.Configuration.IConfiguration configuration)
    : TokenKeepingSubscriber(state, silo, configuration), IItemSubscriberGrain;
