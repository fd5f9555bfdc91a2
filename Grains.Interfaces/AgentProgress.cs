namespace PR2;

/// <summary>An agent's high-water mark on one shard and its lag behind the shard's head.</summary>
[GenerateSerializer, Immutable, Alias("pr2.agent-progress.v1")]
public sealed record AgentProgress(
    [property: Id(0)] string Agent,
    [property: Id(1)] long Mark,
    [property: Id(2)] long Lag);
