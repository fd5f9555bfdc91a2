namespace PR2;

/// <summary>How fresh a read must be.</summary>
public enum ReadConsistency
{
    /// <summary>Any reachable replica's records view: fast, possibly behind.</summary>
    Eventual = 0,

    /// <summary>The primary, with everything committed there when the read began.</summary>
    Strong = 1,

    /// <summary>
    /// A replica that holds everything the session's read token names (its own writes and what it read before):
    /// read-your-writes and monotonic reads. A replica behind is waited for up to a bound, then another is tried;
    /// if none catches up in time the read fails with <see cref="ErrorCode.SessionNotCovered"/>.
    /// </summary>
    Session = 2,
}
