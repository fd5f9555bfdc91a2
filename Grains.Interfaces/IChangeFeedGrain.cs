namespace PR2;

/// <summary>
/// The record changes of one shard (key = shard code), in journal order on the primary, for live subscriptions
/// (<c>Pr2Client.WatchAsync</c>, Server-Sent Events over HTTP). Reading by position makes a subscription
/// resumable and lossless: a subscriber that reconnects continues after the last position it saw.
/// </summary>
public interface IChangeFeedGrain : IGrainWithIntegerKey
{
    /// <summary>The primary's journal head: subscribe after it to see only what happens from now on.</summary>
    Task<long> Head();

    /// <summary>
    /// Changes after <paramref name="afterPosition"/> to records of <paramref name="type"/> (or of the one actor
    /// <paramref name="actorId"/>; both null: every record), at most <paramref name="limit"/> (1..1000).
    /// </summary>
    Task<ChangePage> Read(long afterPosition, string? type, string? actorId, int limit);

    /// <summary>Where the primary is now, as a place that survives a change of primary: watch after it to see only what comes next.</summary>
    Task<WatchPosition> Now();

    /// <summary>
    /// As <see cref="Read"/>, after <paramref name="after"/>: on the replica it names while that one is primary, else on the
    /// primary from just before the first entry of each origin it has not delivered, skipping what it has.
    /// </summary>
    Task<ChangePage> ReadAfter(WatchPosition after, string? type, string? actorId, int limit);
}
