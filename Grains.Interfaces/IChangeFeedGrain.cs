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
}
