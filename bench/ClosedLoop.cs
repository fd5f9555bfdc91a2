using System.Diagnostics;

namespace PR2.Bench;

/// <summary>
/// N writers, each sending its next message as soon as the previous one is acknowledged, for a fixed
/// time after a warm-up. Latency is measured per message; throughput is messages over the measured time.
/// </summary>
internal static class ClosedLoop
{
    public static async Task<(long Messages, TimeSpan Elapsed, LatencyRecorder Latencies, long Errors)> RunAsync(
        int writers, TimeSpan warmup, TimeSpan duration, Func<int, long, Task> send, Action<long>? progress = null)
    {
        var latencies = new LatencyRecorder(writers);
        var measuring = false;
        var stop = false;
        long errors = 0;
        var counts = new long[writers];
        var tasks = Enumerable.Range(0, writers).Select(writer => Task.Run(async () =>
        {
            for (long sequence = 0; !Volatile.Read(ref stop); sequence++)
            {
                var started = Stopwatch.GetTimestamp();
                try
                {
                    await send(writer, sequence);
                }
                catch (Exception)
                {
                    Interlocked.Increment(ref errors);
                    continue;
                }

                if (Volatile.Read(ref measuring))
                {
                    latencies.Record(writer, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                    counts[writer]++;
                }
            }
        })).ToList();

        await Task.Delay(warmup);
        Volatile.Write(ref measuring, true);
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < duration)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(1000, (duration - clock.Elapsed).TotalMilliseconds + 1)));
            progress?.Invoke(counts.Sum());
        }

        Volatile.Write(ref measuring, false);
        var elapsed = clock.Elapsed;
        Volatile.Write(ref stop, true);
        await Task.WhenAll(tasks);
        return (counts.Sum(), elapsed, latencies, errors);
    }
}
