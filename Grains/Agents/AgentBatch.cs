namespace PR2.Grains.Agents;

/// <summary>
/// One batch of one agent: the shard it follows, the replica whose database holds its effects and mark (per-replica
/// agents; 0 otherwise) and the mark it starts after (locked for the batch's transaction).
/// </summary>
public sealed record AgentBatch(int SourceShard, int Replica, long Mark);
