namespace PR2.Grains.Writing;

/// <summary>
/// One group commit's batch and how far it got: whether what may commit it was sent (a connection lost after that
/// leaves its outcome unknown) and whether it committed (a failure after that, in the ack policy's gate, is never the
/// entries' data being refused). With overlapped commits two are in flight at once, so this is per commit, not per writer.
/// </summary>
internal sealed class CommitAttempt(List<PendingWrite> batch)
{
    public List<PendingWrite> Batch { get; } = batch;

    /// <summary>The MessageIds of the batch, in order: what may still commit while it is in flight.</summary>
    public Guid[] MessageIds { get; } = [.. batch.SelectMany(p => p.Requests).Select(r => r.Message.MessageId)];

    /// <summary>True once what may commit it (COMMIT, or a batch in one implicit transaction) was sent.</summary>
    public bool Sent { get; set; }

    /// <summary>True once it committed.</summary>
    public bool Done { get; set; }
}
