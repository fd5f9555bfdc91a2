namespace PR2.Grains.Configuration;

/// <summary>Limits and timeouts of the write path. Bound from <c>Pr2:Write</c>.</summary>
public sealed class WriteOptions
{
    public const string SectionName = "Pr2:Write";

    /// <summary>Largest accepted body in UTF-8 bytes (default 256 KiB).</summary>
    public int MaxBodyBytes { get; set; } = 256 * 1024;

    /// <summary>Most messages in one atomic batch (<c>SendBatchAsync</c>; default 1,000).</summary>
    public int MaxBatchMessages { get; set; } = 1000;

    /// <summary>Most body bytes (UTF-8, summed over its messages) in one atomic batch (default 4 MiB).</summary>
    public int MaxBatchBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>Most entries one group commit writes in one transaction (an atomic batch larger than this goes whole).</summary>
    public int MaxBatchSize { get; set; } = 1000;

    /// <summary>
    /// Whether each group commit also folds its entries into the primary's records view, in its own transaction,
    /// while the records agent there is caught up (default false). True makes records visible with the
    /// acknowledgement (projection lag p99 about 4 ms instead of about 40 ms at 5,000 messages/s here), but each
    /// commit takes longer and the writer is the one serial step of a shard: closed-loop throughput fell by 15-30%
    /// in the benchmark. False leaves every entry to the records agent, which batches many commits per transaction.
    /// </summary>
    public bool ProjectRecordsInline { get; set; }

    /// <summary>
    /// Whether a shard's writer sends the next group commit's inserts while one is in flight (default false): they run
    /// while the first one commits, and the second then moves the head and commits, in order. Applies to shards whose
    /// ack policy waits for no other replica and without <see cref="ProjectRecordsInline"/>; others commit one at a time.
    /// </summary>
    public bool OverlapCommits { get; set; }

    /// <summary>Database command timeout for the write path, in seconds: fail fast rather than hang.</summary>
    public int CommandTimeoutSeconds { get; set; } = 5;

    /// <summary>
    /// The bound on one call to an actor, in seconds: within it the caller gets an acknowledgement or an error,
    /// a retriable one when the shard could not confirm the write in time (the outcome is then unknown).
    /// </summary>
    public double CallTimeoutSeconds { get; set; } = 5;

    /// <summary>
    /// Minutes an actor stays activated after its last message (default 2; Orleans' own default is 15). An idle actor
    /// costs memory (a few KB with its record) and, collected in bulk with every other actor idle since the same
    /// minute, a pause; a collected one costs a journal read when it is next used.
    /// </summary>
    public double ActorIdleMinutes { get; set; } = 2;

    /// <summary><see cref="CallTimeoutSeconds"/> as a span.</summary>
    public TimeSpan CallTimeout => TimeSpan.FromSeconds(CallTimeoutSeconds);
}
