using Orleans.Streams;

namespace PR2.Grains.Streaming;

/// <summary>
/// One committed journal entry on one stream (its shard's journal stream, or its type's stream) and the record it
/// left: a subscriber of <see cref="JournalEntry"/> events gets the entry, one of <see cref="RecordChange"/> events the
/// change (the record, and the place to watch on from).
/// </summary>
[GenerateSerializer, Immutable, Alias("pr2.journal-batch.v1")]
public sealed class JournalBatchContainer(StreamId streamId, JournalEntry entry, JournalStreamToken token, ActorRecord record, WatchPosition place)
    : IBatchContainer
{
    [Id(0)]
    public StreamId StreamId { get; } = streamId;

    [Id(1)]
    public JournalEntry Entry { get; } = entry;

    [Id(2)]
    public JournalStreamToken Token { get; } = token;

    /// <summary>The record as the entry left it (on the replica read).</summary>
    [Id(3)]
    public ActorRecord Record { get; } = record;

    /// <summary>Where a watch is once it has this change: the replica read, the entry's position there, and the token's vector.</summary>
    [Id(4)]
    public WatchPosition Place { get; } = place;

    public StreamSequenceToken SequenceToken => Token;

    public IEnumerable<Tuple<T, StreamSequenceToken>> GetEvents<T>()
    {
        if (Entry is T entry)
        {
            return [Tuple.Create(entry, (StreamSequenceToken)Token)];
        }

        return new RecordChange(Entry.Position, Entry.Stamp, Entry.Kind, Record, Place) is T change ? [Tuple.Create(change, (StreamSequenceToken)Token)] : [];
    }

    public bool ImportRequestContext() => false;
}
