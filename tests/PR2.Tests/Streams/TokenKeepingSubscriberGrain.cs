using Orleans.Streams;
using Orleans.Placement;
using Orleans.Streams.Core;
using PR2.Silo;

namespace PR2.Tests.Streams;

/// <summary>
/// Subscribes implicitly to <c>pr2/bulk</c> and works as an application grain should when it stores its progress in
/// batches: it keeps each entry its token does not include, stores kept entries and token together every
/// <see cref="StoreEvery"/> entries, and resumes from the stored token after any restart, so what it had not stored
/// comes again and is kept again. A delivery whose MessageId it kept but whose token it does not include is counted.
/// </summary>
[ImplicitStreamSubscription("pr2/bulk")]
[RandomPlacement] // the test places one on the silo it kills by activating until one lands there
public sealed class TokenKeepingSubscriberGrain(
    [PersistentState("subscriber", SiloHostingExtensions.GrainStorageName)] IPersistentState<SubscriberState> state,
    ILocalSiloDetails silo)
    : Grain, ITokenKeepingSubscriberGrain, IStreamSubscriptionObserver, IAsyncObserver<JournalEntry>
{
    private const int StoreEvery = 100;

    private readonly HashSet<Guid> _kept = [];
    private JournalStreamToken? _token;
    private int _unstored;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _kept.UnionWith(state.State.Kept);
        _token = state.State.Token is null ? null : JournalStreamToken.Parse(state.State.Token);
        state.State.Activations++;
        await state.WriteStateAsync(cancellationToken);
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (_unstored > 0)
        {
            await state.WriteStateAsync(cancellationToken);
        }
    }

    public async Task OnSubscribed(IStreamSubscriptionHandleFactory handleFactory) =>
        await handleFactory.Create<JournalEntry>().ResumeAsync(this, _token);

    public async Task OnNextAsync(JournalEntry item, StreamSequenceToken? token = null)
    {
        var at = (JournalStreamToken)token!;
        if (_token is not null && _token.Includes(at))
        {
            state.State.Dropped++;
            return;
        }

        if (!_kept.Add(item.MessageId))
        {
            state.State.RepeatedAboveToken++;
        }

        state.State.Kept.Add(item.MessageId);
        _token = at;
        state.State.Token = at.ToString();
        if (++_unstored >= StoreEvery)
        {
            await state.WriteStateAsync();
            _unstored = 0;
        }
    }

    public Task OnCompletedAsync() => Task.CompletedTask;

    public Task OnErrorAsync(Exception ex) => Task.CompletedTask;

    public Task<SubscriberState> Seen() => Task.FromResult(state.State);

    public Task<SiloAddress> Silo() => Task.FromResult(silo.SiloAddress);

    public async Task Leave()
    {
        await state.WriteStateAsync();
        _unstored = 0;
        DeactivateOnIdle();
    }
}
