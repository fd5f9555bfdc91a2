namespace PR2.Grains.Writing;

/// <summary>
/// A group commit planned from memory and sent while the writer goes on gathering the next batch (overlapped commits,
/// <see cref="JournalWriter"/>). <see cref="Committed"/> ends true when it committed from memory, false when nothing
/// was written and the batch must be planned again (the head or an actor was not where the plan assumed, or the commit
/// ahead of it did not commit), or faults with what went wrong.
/// </summary>
internal sealed class OverlappedCommit(CommitAttempt attempt, CommitPlan plan, (long Position, long Clock, long OriginPosition) from)
{
    public CommitAttempt Attempt { get; } = attempt;

    public CommitPlan Plan { get; } = plan;

    /// <summary>The head this commit moves from: where the commit ahead of it leaves it, or the writer's own head.</summary>
    public (long Position, long Clock, long OriginPosition) From { get; } = from;

    /// <summary>For a commit behind another: set true once the one ahead committed (it may then commit), false if it did not.</summary>
    public TaskCompletionSource<bool> Go { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>When it was sent (Stopwatch ticks), for the commit duration metric.</summary>
    public long Started { get; } = System.Diagnostics.Stopwatch.GetTimestamp();

    public Task<bool> Committed { get; set; } = Task.FromResult(false);
}
