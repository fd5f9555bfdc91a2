namespace PR2.Grains.Projections;

/// <summary>What one attempt to swap a rebuilt records view in did (<see cref="RecordsRebuild.TrySwapAsync"/>).</summary>
public enum SwapOutcome
{
    /// <summary>The shadow is the live view now.</summary>
    Swapped,

    /// <summary>The shadow is too far behind the live mark (or has restamps to take in): fold more, then try again.</summary>
    Behind,

    /// <summary>Another session holds the view's lock (a backup's snapshot): nothing was locked; try again later.</summary>
    Busy,

    /// <summary>The live table's shape changed since the rebuild began (a migration): the shadow was made again, empty.</summary>
    Restarted,

    /// <summary>No rebuild is in progress on this replica (none started, or it was swapped in already).</summary>
    NotBuilding,
}
