namespace PR2.Client;

/// <summary>
/// Opt-in retries of retriable refusals (<see cref="Pr2Exception.IsRetriable"/>: a shard or the cluster not answering,
/// a session not covered yet). A write is always retried with the same MessageId, so it commits at most once. Bound from
/// <c>Pr2:Client:Retry</c>.
/// </summary>
public sealed class Pr2RetryOptions
{
    /// <summary>Attempts per call, the first included; 1 (the default) retries nothing.</summary>
    public int MaxAttempts { get; set; } = 1;

    /// <summary>Wait before the first retry; each later one waits about twice as long (with jitter).</summary>
    public TimeSpan FirstDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>The longest wait between two attempts.</summary>
    public TimeSpan MaxDelay { get; set; } = TimeSpan.FromSeconds(2);
}
