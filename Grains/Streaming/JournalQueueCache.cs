using Microsoft.Extensions.Logging;
using Orleans.Streams;

namespace PR2.Grains.Streaming;

/// <summary>
/// The entries a shard's receiver read, in read order, kept until every cursor has passed them and at least
/// <see cref="Retained"/> newer ones are held: a subscriber that resumes from a token finds what it lacks here.
/// A cursor from a token skips every entry the token includes, so it gives what the subscriber lacks whichever
/// replica its token came from. What left the cache is what the checkpoint may move past.
/// </summary>
public sealed class JournalQueueCache(ILogger logger, int retained = JournalQueueCache.DefaultRetained, int maxHeld = JournalQueueCache.DefaultMaxHeld) : IQueueCache
{
    public const int DefaultRetained = 10_000;
    public const int DefaultMaxHeld = 100_000;

    private readonly List<JournalBatchContainer> _items = [];
    private readonly HashSet<JournalQueueCursor> _cursors = [];
    private long _offset; // the absolute index of _items[0]
    private Dictionary<Guid, long> _released = []; // per origin, the highest position that left the cache

    public int Retained => retained;

    /// <summary>The absolute index one past the newest entry.</summary>
    internal long End => _offset + _items.Count;

    internal long Offset => _offset;

    internal JournalBatchContainer this[long index] => _items[(int)(index - _offset)];

    // Two batches per entry (its type's stream and the journal stream), at most 1,000 entries per read.
    public int GetMaxAddCount() => Math.Max(0, Math.Min(1000, (maxHeld - _items.Count) / 2));

    public void AddToCache(IList<IBatchContainer> messages)
    {
        foreach (var message in messages)
        {
            _items.Add((JournalBatchContainer)message);
        }
    }

    public bool TryPurgeFromCache(out IList<IBatchContainer> purgedItems)
    {
        var keepFrom = End - retained;
        foreach (var cursor in _cursors)
        {
            keepFrom = Math.Min(keepFrom, cursor.Next - 1); // the cursor's current entry may still be in delivery
        }

        var count = (int)Math.Min(keepFrom - _offset, _items.Count);
        if (count <= 0)
        {
            purgedItems = [];
            return false;
        }

        purgedItems = _items.GetRange(0, count).Cast<IBatchContainer>().ToList();
        foreach (var item in purgedItems.Cast<JournalBatchContainer>())
        {
            _released[item.Token.Origin] = Math.Max(_released.GetValueOrDefault(item.Token.Origin), item.Token.OriginPosition);
        }

        _items.RemoveRange(0, count);
        _offset += count;
        return true;
    }

    public IQueueCacheCursor GetCacheCursor(StreamId streamId, StreamSequenceToken? token)
    {
        if (token is not JournalStreamToken from)
        {
            // No position asked for: from what arrives next.
            return Track(streamId, "nothing", new JournalQueueCursor(this, streamId, End, skip: null));
        }

        if (from.OriginPosition == 0)
        {
            // JournalStreamToken.Start: everything held. Entries that left before are no surprise, and throwing here would
            // make the pulling agent skip the batch it was about to deliver.
            return Track(streamId, "the start", new JournalQueueCursor(this, streamId, _offset, skip: null));
        }

        // Resume at the token's own entry (the pulling agent moves past it when it is the consumer's last one):
        // skip what was delivered before it.
        var before = new Dictionary<Guid, long>(from.Delivered) { [from.Origin] = from.OriginPosition - 1 };
        if (_released.Any(released => before.GetValueOrDefault(released.Key) < released.Value))
        {
            // Entries the token lacks have left the cache: say so (the subscriber's OnErrorAsync) instead of a silent gap.
            Log.StreamCacheMiss(logger, streamId);
            throw new DataNotAvailableException($"stream {streamId}: entries after the token asked for have left the cache (they are in the journal; read them there)");
        }

        return Track(streamId, $"{from.Origin}#{from.OriginPosition}", new JournalQueueCursor(this, streamId, _offset, before));
    }

    public bool IsUnderPressure() => _items.Count >= maxHeld;

    /// <summary>The reader starts after <paramref name="checkpoint"/>: what it includes counts as released (never in this cache).</summary>
    internal void StartsAfter(IReadOnlyDictionary<Guid, long> checkpoint)
    {
        foreach (var (origin, position) in checkpoint)
        {
            _released[origin] = Math.Max(_released.GetValueOrDefault(origin), position);
        }
    }

    internal void Release(JournalQueueCursor cursor) => _cursors.Remove(cursor);

    private JournalQueueCursor Track(StreamId streamId, string from, JournalQueueCursor cursor)
    {
        Log.StreamCursorStarted(logger, streamId, from, cursor.Next, _offset, End);
        _cursors.Add(cursor);
        return cursor;
    }
}
