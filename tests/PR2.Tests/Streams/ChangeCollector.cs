using System.Collections.Concurrent;
using Orleans.Streams;

namespace PR2.Tests.Streams;

/// <summary>A client-side subscriber of record changes (the record each entry left) that keeps what it is given.</summary>
public sealed class ChangeCollector : IAsyncObserver<RecordChange>
{
    public ConcurrentQueue<RecordChange> Received { get; } = new();

    public Task OnNextAsync(RecordChange item, StreamSequenceToken? token = null)
    {
        Received.Enqueue(item);
        return Task.CompletedTask;
    }

    public Task OnCompletedAsync() => Task.CompletedTask;

    public Task OnErrorAsync(Exception ex) => Task.CompletedTask;
}
