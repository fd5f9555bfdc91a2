using System.Collections.Concurrent;
using PR2.Client;

namespace PR2.Tests.Infrastructure;

/// <summary>Every progress report of a long operation (a replica added, a view rebuilt), for checks on what it said.</summary>
public sealed class RecordedProgress : IProgress<TransferProgress>
{
    public ConcurrentQueue<TransferProgress> Reports { get; } = new();

    public void Report(TransferProgress value) => Reports.Enqueue(value);
}
