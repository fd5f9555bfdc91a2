namespace PR2.Grains.Configuration;

/// <summary>On how many replicas an entry must be committed before its acknowledgement is sent.</summary>
public enum AckPolicy
{
    /// <summary>The primary only; the other replicas follow by anti-entropy.</summary>
    Primary,

    /// <summary>A majority of the shard's replicas (the primary included).</summary>
    Quorum,

    /// <summary>Every replica of the shard.</summary>
    All,
}
