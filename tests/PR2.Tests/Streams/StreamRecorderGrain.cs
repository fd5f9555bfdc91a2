using Orleans.Streams;
using Orleans.Streams.Core;

namespace PR2.Tests.Streams;

/// <summary>
/// Subscribes implicitly to <c>pr2/streamtest</c> and keeps what it is given, as an application grain would: it resumes
/// from the last token it stored, and keeps everything it is given (duplicates included) so that the tests can judge.
/// </summary>
[ImplicitStreamSubscription("pr2/streamtest")]
public sealed class StreamRecorderGrain : Grain, IStreamRecorderGrain, IStreamSubscriptionObserver, IAsyncObserver<JournalEntry>
{
    private readonly List<(JournalEntry Entry, string Token)> _received = [];
    private JournalStreamToken? _stored;

    public async Task OnSubscribed(IStreamSubscriptionHandleFactory handleFactory) =>
        await handleFactory.Create<JournalEntry>().ResumeAsync(this, _stored);

    public Task OnNextAsync(JournalEntry item, StreamSequenceToken? token = null)
    {
        var journalToken = (JournalStreamToken)token!;
        _received.Add((item, journalToken.ToString()));
        _stored = journalToken;
        return Task.CompletedTask;
    }

    public Task OnCompletedAsync() => Task.CompletedTask;

    public Task OnErrorAsync(Exception ex) => Task.CompletedTask;

    public Task<IReadOnlyList<(JournalEntry Entry, string Token)>> Received() =>
        Task.FromResult<IReadOnlyList<(JournalEntry, string)>>([.. _received]);
}
