using System.Diagnostics.Metrics;

namespace PR2.Client;

/// <summary>
/// Instruments of watches (<see cref="Pr2Client.WatchAsync(int, WatchPosition?, string?, string?, TimeSpan?, CancellationToken)"/>,
/// the HTTP change streams built on it), on the <c>PR2.Client</c> meter: how often a watch went live on a journal
/// stream, and how often it went back to reading the journal (its reader fell a full buffer behind, or the stream failed).
/// </summary>
public static class WatchMetrics
{
    public const string MeterName = "PR2.Client";

    private static readonly Meter Meter = new(MeterName);

    public static readonly Counter<long> WentLive = Meter.CreateCounter<long>("pr2.watch.live", "{subscription}",
        "Watches that caught up from the journal and went on from the shard's journal stream, by shard");

    public static readonly Counter<long> CaughtUp = Meter.CreateCounter<long>("pr2.watch.catchups", "{catchup}",
        "Watches that left the stream to read on from the journal, by shard and reason (overflow: the reader fell behind; stream: the stream failed)");
}
