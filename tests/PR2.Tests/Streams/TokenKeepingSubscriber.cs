using Microsoft.Extensions.Configuration;
using Orleans.Streams;
using Orleans.Streams.Core;

namespace PR2.Tests.Streams;

/// <summary>
/// An implicit journal stream subscriber that works as an application grain should when it stores its progress in
/// batches: it keeps each entry its token does not include, stores kept entries and token together every
/// <see cref="StoreEvery"/> entries, and resumes from the stored token (or from the start, <see cref="JournalStreamToken.Start"/>,
/// before it stored one) after any restart, so what it had not stored comes again and is kept again. A delivery its token does not include but whose MessageId it kept (a message held
/// under two origins after a fail-over, given again after a reader restart) is dropped and counted.
/// </summary>
public abstract class TokenKeepingSubscriber(IPersistentState<SubscriberState> state, ILocalSiloDetails silo, IConfiguration configuration)
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

    public async Task OnSubscribed(IStreamSubscriptionHandleFactory handleFactory)
    {
        Note($"activation {state.State.Activations} on {silo.SiloAddress} resumes from {(_token is null ? "nothing" : $"#{_token.OriginPosition}")}");
        await handleFactory.Create<JournalEntry>().ResumeAsync(this, _token ?? JournalStreamToken.Start);
    }

    public async Task OnNextAsync(JournalEntry item, StreamSequenceToken? token = null)
    {
        var at = (JournalStreamToken)token!;
        if (_token is not null && _token.Includes(at))
        {
            state.State.Dropped++;
            return;
        }

        if (_token is not null && !_token.Includes(at.Origin, at.OriginPosition - 1) && at.Origin == _token.Origin)
        {
            Note($"activation {state.State.Activations}: #{at.OriginPosition} given after #{_token.OriginPosition}");
        }

        if (!_kept.Add(item.MessageId))
        {
            state.State.RepeatedAboveToken++;
            return;
        }

        await KeptLedger.RecordAsync(configuration, this.GetGrainId(), item.MessageId);
        state.State.Kept.Add(item.MessageId);
        state.State.KeptOrigins.Add(new(item.OriginReplica, item.OriginPosition));
        _token = at;
        state.State.Token = at.ToString();
        // With no token stored yet, a new activation resumes from the start of the stream and is given all again.
        if (++_unstored >= StoreEvery)
        {
            await state.WriteStateAsync();
            _unstored = 0;
        }
    }

    public Task OnCompletedAsync() => Task.CompletedTask;

    public Task OnErrorAsync(Exception ex)
    {
        Note($"activation {state.State.Activations}: error {ex.GetType().Name}: {ex.Message}");
        return Task.CompletedTask;
    }

    private void Note(string what)
    {
        if (state.State.Trail.Count < 200)
        {
            state.State.Trail.Add($"{DateTime.UtcNow:HH:mm:ss.fff} {what}");
        }
    }

    public Task<SubscriberState> Seen() => Task.FromResult(state.State);

    public Task<SiloAddress> Silo() => Task.FromResult(silo.SiloAddress);

    public async Task Leave()
    {
        await state.WriteStateAsync();
        _unstored = 0;
        DeactivateOnIdle();
    }
}
