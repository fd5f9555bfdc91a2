using Orleans.Streams;

namespace PR2.Grains.Streaming;

/// <summary>A subscriber's place in a <see cref="JournalQueueCache"/>: the entries of its stream, minus those it already has.</summary>
public sealed class JournalQueueCursor : IQueueCacheCursor
{
    private readonly JournalQueueCache _cache;
    private readonly StreamId _streamId;
    private readonly Dictionary<Guid, long>? _skip;
    private JournalBatchContainer? _current;

    internal JournalQueueCursor(JournalQueueCache cache, StreamId streamId, long next, Dictionary<Guid, long>? skip)
    {
        _cache = cache;
        _streamId = streamId;
        Next = next;
        _skip = skip;
    }

    /// <summary>The absolute cache index of the next entry to look at; the cache keeps everything from here.</summary>
    internal long Next { get; private set; }

    public IBatchContainer? GetCurrent(out Exception? exception)
    {
        exception = null;
        return _current;
    }

    public bool MoveNext()
    {
        Next = Math.Max(Next, _cache.Offset);
        while (Next < _cache.End)
        {
            var item = _cache[Next++];
            if (item.StreamId != _streamId || (_skip is not null && _skip.GetValueOrDefault(item.Token.Origin) >= item.Token.OriginPosition))
            {
                continue;
            }

            _current = item;
            return true;
        }

        return false;
    }

    public void Refresh(StreamSequenceToken token)
    {
    }

    public void RecordDeliveryFailure()
    {
    }

    public void Dispose() => _cache.Release(this);
}
