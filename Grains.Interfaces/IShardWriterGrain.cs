namespace PR2;

/// <summary>
/// The journal writer of one shard (key = shard code). Assigns contiguous positions and Lamport stamps
/// and group-commits concurrent appends into one transaction. Reentrant: appends arriving while a
/// transaction is in flight join the next one. Acknowledges only after commit.
/// </summary>
public interface IShardWriterGrain : IGrainWithIntegerKey
{
    /// <summary>Appends one entry; returns its acknowledgement after the commit, or the first acknowledgement for a known MessageId.</summary>
    Task<WriteAck> Append(AppendRequest request);

    /// <summary>The shard's committed head: last position and Lamport clock.</summary>
    Task<ShardHead> GetHead();

    /// <summary>Index of the replica the writer appends to (the primary), choosing one first if needed.</summary>
    Task<int> GetPrimary();

    /// <summary>
    /// A reader could not reach replica <paramref name="primary"/> as the primary: if it is still the primary
    /// and does not answer a short probe either, the writer fails over. Returns the primary's index afterwards.
    /// </summary>
    Task<int> ReportUnreachable(int primary);
}
