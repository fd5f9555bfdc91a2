namespace PR2.Grains.Agents;

/// <summary>
/// One batch of one agent: the shard it follows, the replica it reads (per-replica agents; 0 otherwise), the mark it
/// starts after (locked for the batch's transaction) and the mark's revision (sql/012): the batch's commit leaves it
/// one higher.
/// </summary>
public sealed record AgentBatch(int SourceShard, int Replica, long Mark, long Revision = 0);
