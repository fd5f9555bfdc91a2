namespace PR2.Grains.Storage;

/// <summary>SQL LIKE patterns built from user text, its wildcards escaped so that it matches literally.</summary>
public static class LikePattern
{
    /// <summary>Matches every text that starts with <paramref name="prefix"/> (everything when null).</summary>
    public static string StartingWith(string? prefix) =>
        (prefix ?? "").Replace("\\", "\\\\", StringComparison.Ordinal).Replace("%", "\\%", StringComparison.Ordinal).Replace("_", "\\_", StringComparison.Ordinal) + "%";
}
