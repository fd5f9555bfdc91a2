namespace PR2;

/// <summary>Reads a shard's journal (key = shard code) from its primary. Stateless: any silo answers.</summary>
public interface IJournalReaderGrain : IGrainWithIntegerKey
{
    /// <summary>At most <paramref name="limit"/> (1..1000) entries starting at <paramref name="fromPosition"/> (inclusive), in position order.</summary>
    Task<IReadOnlyList<JournalEntry>> Read(long fromPosition, int limit);
}
