namespace PR2.Silo.Http;

/// <summary>The body of <c>PATCH /v1/shards/{shard}</c>: what the shard is, as a merge patch of its directory record.</summary>
public sealed class ShardMetadataRequest
{
    /// <summary>What the shard is, e.g. the company it holds; omit to leave it, <c>""</c> to remove it.</summary>
    public string? Name { get; init; }

    /// <summary>Who answers for it; omit to leave it, <c>""</c> to remove it.</summary>
    public string? Owner { get; init; }

    /// <summary>Labels to set (key to value) or remove (key to <c>null</c>); the others stay.</summary>
    public Dictionary<string, string?>? Labels { get; init; }
}
