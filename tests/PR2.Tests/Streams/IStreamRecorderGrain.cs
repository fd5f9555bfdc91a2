namespace PR2.Tests.Streams;

/// <summary>A subscriber of the <c>pr2/streamtest</c> journal stream of one shard (key = shard code), for the tests to question.</summary>
public interface IStreamRecorderGrain : IGrainWithIntegerKey
{
    /// <summary>Every entry delivered, in delivery order, with the text form of its token.</summary>
    Task<IReadOnlyList<(JournalEntry Entry, string Token)>> Received();
}
