namespace PR2;

/// <summary>The projections of one shard (key = shard code): what folds its journal, and rebuilds of the records view.</summary>
public interface IProjectionsGrain : IGrainWithIntegerKey
{
    /// <summary>Every projection following the shard, with each replica's mark and the records view's rebuild state.</summary>
    Task<IReadOnlyList<ProjectionStatus>> List();

    /// <summary>
    /// Starts rebuilding <paramref name="projection"/> on every member replica (or finds the rebuild in progress) and
    /// returns at once; <see cref="Status"/> follows it. Each replica folds its journal from the start into a shadow while
    /// writes go on, then swaps it in atomically. The records view (<c>records</c>) and a rule's views
    /// (<c>rule-{name}</c>) can be rebuilt; the object directory cannot yet. <paramref name="restart"/> starts
    /// a rebuild in progress over (e.g. after a fix to the fold was deployed during it).
    /// </summary>
    Task<ProjectionStatus> Rebuild(string projection, bool restart = false);

    /// <summary>
    /// Cancels the rebuild of <paramref name="projection"/> on every replica where it is in progress: each drops its shadow
    /// and keeps its live view. A replica that already swapped its rebuilt view in keeps it. Safe to retry.
    /// </summary>
    Task<ProjectionStatus> Cancel(string projection);

    /// <summary>Where <paramref name="projection"/> stands on each replica.</summary>
    Task<ProjectionStatus> Status(string projection);
}
