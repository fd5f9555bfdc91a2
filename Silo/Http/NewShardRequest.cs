namespace PR2.Silo.Http;

/// <summary>The body of <c>POST /v1/shards</c>: a shard to add to the running cluster (see <see cref="NewShard"/>).</summary>
public sealed class NewShardRequest
{
    /// <summary>Code of the new shard: 1 or more, not in use.</summary>
    public int Shard { get; init; }

    /// <summary>Per replica, the configuration key that holds its connection string on every silo (never the string itself).</summary>
    public List<string>? Connections { get; init; }

    /// <summary><c>Primary</c> (default), <c>Quorum</c> or <c>All</c>.</summary>
    public string? AckPolicy { get; init; }

    /// <summary>What the shard is, e.g. the company it holds.</summary>
    public string? Name { get; init; }

    /// <summary>Who answers for it.</summary>
    public string? Owner { get; init; }

    /// <summary>Labels (key to value).</summary>
    public Dictionary<string, string>? Labels { get; init; }
}
