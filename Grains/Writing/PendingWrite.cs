namespace PR2.Grains.Writing;

/// <summary>
/// What waits in a journal writer's queue for its group commit: one append (<see cref="PendingAppend"/>) or an atomic
/// batch of them (<see cref="PendingBatch"/>), which a commit plans whole and never splits.
/// </summary>
internal abstract class PendingWrite
{
    /// <summary>The trace of the call that appended (its group commit's span joins it).</summary>
    public System.Diagnostics.ActivityContext Trace { get; } = System.Diagnostics.Activity.Current?.Context ?? default;

    /// <summary>The appends, in order.</summary>
    public abstract IReadOnlyList<AppendRequest> Requests { get; }

    public abstract void Fail(Exception reason);
}
