using Orleans.Streams;
using Orleans.Streams.Core;
using PR2.Silo;

namespace PR2.Samples.SiloWithRule;

/// <summary>
/// Follows every committed order entry of its shard through the journal stream (an implicit subscription: no setup,
/// activated by the first order) and keeps counts in grain storage together with the token of the last entry counted.
/// After a restart or a fail-over the stream gives again what came after its checkpoint; the stored token drops it.
/// </summary>
[ImplicitStreamSubscription("pr2/order")]
public sealed class OrderTotalsGrain([PersistentState("order-totals", SiloHostingExtensions.GrainStorageName)] IPersistentState<OrderTotals> totals)
    : Grain, IOrderTotalsGrain, IStreamSubscriptionObserver, IAsyncObserver<JournalEntry>
{
    public Task OnSubscribed(IStreamSubscriptionHandleFactory handleFactory) =>
        handleFactory.Create<JournalEntry>().ResumeAsync(this, totals.State.Token is null ? JournalStreamToken.Start : JournalStreamToken.Parse(totals.State.Token));

    public Task<OrderTotals> Get() => Task.FromResult(totals.State);

    public async Task OnNextAsync(JournalEntry entry, StreamSequenceToken? token = null)
    {
        var at = (JournalStreamToken)token!;
        if (totals.State.Token is not null && JournalStreamToken.Parse(totals.State.Token).Includes(at))
        {
            return; // counted before a restart
        }

        switch (entry.Kind)
        {
            case MessageKind.Insert:
                totals.State.Placed++;
                totals.State.Total += System.Text.Json.Nodes.JsonNode.Parse(entry.Body)?["total"]?.GetValue<decimal>() ?? 0m;
                break;
            case MessageKind.Cancel:
                totals.State.Canceled++;
                break;
        }

        totals.State.Token = at.ToString();
        await totals.WriteStateAsync();
    }

    public Task OnCompletedAsync() => Task.CompletedTask;

    public Task OnErrorAsync(Exception ex) => Task.CompletedTask;
}
