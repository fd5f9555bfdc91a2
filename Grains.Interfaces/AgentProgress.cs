namespace PR2;

/// <summary>An agent's high-water mark on one shard and its lag behind the shard's head.</summary>
/// <param name="Agent">The agent's name.</param>
/// <param name="Mark">Its high-water mark: the last journal position it applied on the primary (-1 when unknown).</param>
/// <param name="Lag">Entries it is behind the primary's head (-1 when unknown).</param>
/// <param name="LagSeconds">How long ago the oldest entry it has not applied yet was recorded (0 when caught up, -1 when unknown).</param>
[GenerateSerializer, Immutable, Alias("pr2.agent-progress.v1")]
public sealed record AgentProgress(
    [property: Id(0)] string Agent,
    [property: Id(1)] long Mark,
    [property: Id(2)] long Lag,
    [property: Id(3)] double LagSeconds = 0);
