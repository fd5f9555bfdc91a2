using System.Diagnostics;

namespace PR2.Tests.Infrastructure;

/// <summary>
/// Measures how late a 100 ms timer fires in this process while a test runs: the silos share the process,
/// so a long delay here means every grain stalled (thread-pool starvation, a blocking call).
/// </summary>
public sealed class StallMeter : IAsyncDisposable
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(100);

    private readonly CancellationTokenSource _stop = new();
    private readonly Task _running;

    public StallMeter() => _running = Task.Run(RunAsync);

    /// <summary>The longest delay past a tick seen so far.</summary>
    public TimeSpan Longest { get; private set; }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _running;
        _stop.Dispose();
    }

    private async Task RunAsync()
    {
        var clock = Stopwatch.StartNew();
        while (!_stop.IsCancellationRequested)
        {
            var before = clock.Elapsed;
            try
            {
                await Task.Delay(Tick, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            var late = clock.Elapsed - before - Tick;
            Longest = late > Longest ? late : Longest;
        }
    }
}
