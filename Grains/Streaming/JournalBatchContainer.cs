using Orleans.Streams;

namespace PR2.Grains.Streaming;

/// <summary>One committed journal entry on one stream (its shard's journal stream, or its type's stream).</summary>
[GenerateSerializer, Immutable, Alias("pr2.journal-batch.v1")]
public sealed class JournalBatchContainer(StreamId streamId, JournalEntry entry, JournalStreamToken token) : IBatchContainer
{
    [Id(0)]
    public StreamId StreamId { get; } = streamId;

    [Id(1)]
    public JournalEntry Entry { get; } = entry;

    [Id(2)]
    public JournalStreamToken Token { get; } = token;

    public StreamSequenceToken SequenceToken => Token;

    public IEnumerable<Tuple<T, StreamSequenceToken>> GetEvents<T>() =>
        Entry is T typed ? [Tuple.Create(typed, (StreamSequenceToken)Token)] : [];

    public bool ImportRequestContext() => false;
}
