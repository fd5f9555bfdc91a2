using System.Collections.Concurrent;

namespace PR2.Silo.Http;

/// <summary>
/// Counts each caller's open change streams (Server-Sent Events), so that one caller cannot hold the silo's read
/// capacity with thousands of them: past <see cref="HttpApiOptions.MaxStreamsPerCaller"/>, a new one is refused (429).
/// </summary>
public sealed class StreamLimiter
{
    private readonly ConcurrentDictionary<string, int> _open = new(StringComparer.Ordinal);

    /// <summary>A lease on one more stream for <paramref name="caller"/>, released on dispose; null when it has <paramref name="limit"/> open.</summary>
    public IDisposable? TryOpen(string caller, int limit)
    {
        while (true)
        {
            var open = _open.GetOrAdd(caller, 0);
            if (open >= limit)
            {
                return null;
            }

            if (_open.TryUpdate(caller, open + 1, open))
            {
                PR2.Grains.Pr2Metrics.StreamsOpen.Add(1);
                return new Lease(this, caller);
            }
        }
    }

    /// <summary>How many streams <paramref name="caller"/> has open now.</summary>
    public int OpenFor(string caller) => _open.GetValueOrDefault(caller);

    private void Close(string caller)
    {
        _open.AddOrUpdate(caller, 0, (_, open) => Math.Max(0, open - 1));
        PR2.Grains.Pr2Metrics.StreamsOpen.Add(-1);
    }

    private sealed class Lease(StreamLimiter limiter, string caller) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                limiter.Close(caller);
            }
        }
    }
}
