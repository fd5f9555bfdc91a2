using System.Collections.Concurrent;

namespace PR2.Tests.Infrastructure;

/// <summary>Every report a call made through an <see cref="IProgress{T}"/>, in order, recorded as it is made.</summary>
public sealed class RecordedReports<T> : IProgress<T>
{
    public ConcurrentQueue<T> Reports { get; } = new();

    public void Report(T value) => Reports.Enqueue(value);
}
