using Orleans.Streams;
using PR2.Silo;

namespace PR2.Tests.Streams;

/// <summary>
/// Subscribes explicitly and keeps each entry with its token in the same state write, as an application should: after
/// any restart it resumes from the stored token and drops what that token includes.
/// </summary>
public sealed class StreamWatcherGrain([PersistentState("watcher", SiloHostingExtensions.GrainStorageName)] IPersistentState<WatcherState> state)
    : Grain, IStreamWatcherGrain, IAsyncObserver<JournalEntry>
{
    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        state.State.Activations++;
        await state.WriteStateAsync(cancellationToken);
        if (state.State.Shard >= 0)
        {
            var token = state.State.Token is null ? null : JournalStreamToken.Parse(state.State.Token);
            foreach (var handle in await Stream(state.State.Shard).GetAllSubscriptionHandles())
            {
                await handle.ResumeAsync(this, token);
            }
        }
    }

    public async Task Subscribe(int shard)
    {
        state.State.Shard = shard;
        await state.WriteStateAsync();
        await Stream(shard).SubscribeAsync(this);
    }

    public Task<WatcherState> Seen() => Task.FromResult(state.State);

    public async Task OnNextAsync(JournalEntry item, StreamSequenceToken? token = null)
    {
        var at = (JournalStreamToken)token!;
        if (state.State.Token is not null && JournalStreamToken.Parse(state.State.Token).Includes(at))
        {
            state.State.Dropped++;
            return;
        }

        state.State.Kept.Add(item.MessageId);
        state.State.Token = at.ToString();
        await state.WriteStateAsync();
    }

    public Task OnCompletedAsync() => Task.CompletedTask;

    public Task OnErrorAsync(Exception ex) => Task.CompletedTask;

    private IAsyncStream<JournalEntry> Stream(int shard) =>
        this.GetStreamProvider(Pr2Streams.ProviderName).GetStream<JournalEntry>(Pr2Streams.OfType(shard, "streamtest"));
}
