using Orleans.Runtime.Providers;

namespace PR2.Grains.Streaming;

/// <summary>
/// How long the journal streams wait before trying again: a delivery to a subscriber (its silo died, it threw) or a read
/// of the shard's journal (its primary did not answer). Doubling from <see cref="First"/> up to <see cref="Longest"/>:
/// Orleans' defaults (up to 30 s per delivery, 10 to 20 s per read) left subscribers behind for a minute after faults
/// had healed, for a retry that costs one call or one indexed read.
/// </summary>
public sealed class StreamRetryBackoff : IMessageDeliveryBackoffProvider, IQueueReaderBackoffProvider
{
    public static readonly TimeSpan First = TimeSpan.FromMilliseconds(200);
    public static readonly TimeSpan Longest = TimeSpan.FromSeconds(3);

    public TimeSpan Next(int attempt) =>
        TimeSpan.FromTicks(Math.Min(Longest.Ticks, First.Ticks << Math.Clamp(attempt, 0, 10)));
}
