namespace PR2.Grains.Rules;

/// <summary>How a view action changes its document.</summary>
public enum ViewMode
{
    /// <summary>The document becomes the given one.</summary>
    Set,

    /// <summary>The given object is merged in (JSON merge patch: null removes a member).</summary>
    Merge,

    /// <summary>Each given number is added to the member of that name (missing counts as 0).</summary>
    Add,

    /// <summary>The document is removed.</summary>
    Delete,
}
