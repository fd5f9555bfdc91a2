namespace PR2;

/// <summary>How fresh a read must be.</summary>
public enum ReadConsistency
{
    /// <summary>Any reachable replica's records view: fast, possibly behind.</summary>
    Eventual = 0,

    /// <summary>The primary, with everything committed there when the read began.</summary>
    Strong = 1,
}
