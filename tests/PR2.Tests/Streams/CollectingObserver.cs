using System.Collections.Concurrent;
using Orleans.Streams;

namespace PR2.Tests.Streams;

/// <summary>A client-side journal stream subscriber that keeps what it is given, with its tokens.</summary>
public sealed class CollectingObserver : IAsyncObserver<JournalEntry>
{
    public ConcurrentQueue<(JournalEntry Entry, JournalStreamToken Token)> Received { get; } = new();

    public Task OnNextAsync(JournalEntry item, StreamSequenceToken? token = null)
    {
        Received.Enqueue((item, (JournalStreamToken)token!));
        return Task.CompletedTask;
    }

    public Task OnCompletedAsync() => Task.CompletedTask;

    /// <summary>The errors the stream reported (e.g. DataNotAvailable: the token asked for is older than the cache).</summary>
    public ConcurrentQueue<Exception> Errors { get; } = new();

    public Task OnErrorAsync(Exception ex)
    {
        Errors.Enqueue(ex);
        return Task.CompletedTask;
    }
}
