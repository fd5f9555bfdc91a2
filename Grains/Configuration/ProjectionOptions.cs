namespace PR2.Grains.Configuration;

/// <summary>How projections are rebuilt. Bound from <c>Pr2:Projections</c>.</summary>
public sealed class ProjectionOptions
{
    public const string SectionName = "Pr2:Projections";

    /// <summary>
    /// Most journal entries a records view rebuild folds per second on one replica (0, the default: as fast as the
    /// replica's server gives them). A rebuild takes CPU from the writes beside it (on two shared cores, unpaced, their
    /// p99 doubled): a limit spreads the same work over more time.
    /// </summary>
    public int RebuildEntriesPerSecond { get; set; }
}
