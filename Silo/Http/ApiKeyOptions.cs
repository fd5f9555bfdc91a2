namespace PR2.Silo.Http;

/// <summary>One API key and the shards it may read and write (<c>*</c>: every shard, and the cluster-wide endpoints).</summary>
public sealed class ApiKeyOptions
{
    /// <summary>Who holds the key (shown in logs, never the key itself).</summary>
    public string Name { get; set; } = "";

    public string Key { get; set; } = "";

    /// <summary>Shard codes as text, or <c>*</c>.</summary>
    public List<string> Shards { get; set; } = [];
}
