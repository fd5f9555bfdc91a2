namespace PR2;

/// <summary>
/// Reads of one shard (key = shard code), each answered inside one PostgreSQL snapshot (REPEATABLE READ) of one
/// replica, reporting the replica and the journal position it reflects. Stateless: any silo answers.
/// </summary>
public interface IReadGrain : IGrainWithIntegerKey
{
    /// <summary>An actor's record at the given consistency (<paramref name="token"/>: what a session read must cover).</summary>
    Task<RecordRead> GetRecord(string actorId, ReadConsistency consistency, ReadToken? token = null);

    /// <summary>An actor's record as it was at <paramref name="asOf"/>: its entries stamped up to it, folded (from the primary).</summary>
    Task<RecordRead> GetRecordAsOf(string actorId, LamportStamp asOf);

    /// <summary>
    /// Live and canceled records of <paramref name="type"/> whose state contains <paramref name="containsJson"/> (jsonb <c>@&gt;</c>;
    /// null for all), by actor id, at most <paramref name="limit"/> (1..1000), after <paramref name="cursor"/> (from the previous page).
    /// </summary>
    Task<RecordPage> Query(string type, string? containsJson, string? cursor, int limit, ReadConsistency consistency, ReadToken? token = null);
}
