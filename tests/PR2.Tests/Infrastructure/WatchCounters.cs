using System.Diagnostics.Metrics;
using PR2.Client;

namespace PR2.Tests.Infrastructure;

/// <summary>Counts the watch instruments (<see cref="WatchMetrics"/>) recorded in this process while it is alive.</summary>
public sealed class WatchCounters : IDisposable
{
    private readonly MeterListener _listener = new();
    private long _live;
    private long _overflows;
    private long _streamErrors;

    public WatchCounters()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == WatchMetrics.MeterName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            if (instrument.Name == "pr2.watch.live")
            {
                Interlocked.Add(ref _live, value);
            }
            else if (instrument.Name == "pr2.watch.catchups")
            {
                var overflow = tags.ToArray().Any(t => t.Key == "reason" && Equals(t.Value, "overflow"));
                Interlocked.Add(ref overflow ? ref _overflows : ref _streamErrors, value);
            }
        });
        _listener.Start();
    }

    /// <summary>Watches that went live on a journal stream.</summary>
    public long Live => Interlocked.Read(ref _live);

    /// <summary>Watches that left the stream because their reader fell a full buffer behind.</summary>
    public long Overflows => Interlocked.Read(ref _overflows);

    /// <summary>Watches whose stream failed (or said the entries they lack left its cache).</summary>
    public long StreamErrors => Interlocked.Read(ref _streamErrors);

    public void Dispose() => _listener.Dispose();
}
