namespace PR2.Client;

/// <summary>
/// The cluster as a frontend sees it: sessions for units of work, and what is not tied to one (live changes, journals,
/// status, the directory, rules and views). Itself a session too, for programs that are one unit of work (a tool, a
/// console app). Implemented by <see cref="Pr2Client"/>; mock or wrap it in your own tests.
/// </summary>
public interface IPr2Client : IPr2Session
{
    /// <summary>A new session with an empty read token (one per web request, command or user).</summary>
    IPr2Session OpenSession();

    /// <summary>Live record changes of a type (or one actor) in journal order, after a position (null: from now on).</summary>
    IAsyncEnumerable<RecordChange> WatchAsync(int shard, string? type = null, string? actorId = null, long? afterPosition = null,
        TimeSpan? pollInterval = null, CancellationToken cancellationToken = default);

    /// <summary>Live record changes after a <see cref="WatchPosition"/> (a change's <c>Resume</c>), across changes of primary.</summary>
    IAsyncEnumerable<RecordChange> WatchAsync(int shard, WatchPosition? after, string? type = null, string? actorId = null,
        TimeSpan? pollInterval = null, CancellationToken cancellationToken = default);

    /// <summary>Journal entries of a shard from a position (inclusive), at most <paramref name="limit"/> (1..1000).</summary>
    Task<IReadOnlyList<JournalEntry>> ReadJournalAsync(int shard, long fromPosition = 1, int limit = 100, CancellationToken cancellationToken = default);

    /// <summary>Shards, replicas, heads, agents' marks and lag, the latest fail-overs and the silos.</summary>
    Task<ClusterStatus> GetStatusAsync(CancellationToken cancellationToken = default);

    /// <summary>Documents of a view kept by rules in a shard, by key.</summary>
    Task<IReadOnlyList<ViewDocument>> QueryViewAsync(int shard, string view, string? keyPrefix = null, int limit = 100, CancellationToken cancellationToken = default);

    /// <summary>Object directory lookup: actors of a type (or all) whose id starts with a prefix, and their shards.</summary>
    Task<IReadOnlyList<ObjectLocation>> FindObjectsAsync(string? type = null, string? prefix = null, int limit = 100, CancellationToken cancellationToken = default);
}
