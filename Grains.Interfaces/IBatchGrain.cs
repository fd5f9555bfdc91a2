namespace PR2;

/// <summary>
/// The way in for atomic batches, one per shard (integer key: the shard code; a stateless worker on each silo).
/// </summary>
public interface IBatchGrain : IGrainWithIntegerKey
{
    /// <summary>
    /// Appends <paramref name="messages"/> (to any actors of this shard) all together or not at all, in batch order, as if
    /// they had been sent one by one: each is judged against its actor's record as the messages before it in the batch
    /// leave it. One refusal refuses the batch (<see cref="ErrorCode.BatchRefused"/>, with every refused message and why
    /// in <see cref="Pr2Exception.Refusals"/>) and nothing is written. A batch accepted before, sent again with the same
    /// messages, gets its first acknowledgement (<see cref="BatchAck.Duplicate"/>); a batch that reuses some of those
    /// MessageIds with other content, or mixes them with new ones, is refused (<see cref="ErrorCode.IdempotencyConflict"/>).
    /// Retriable errors (<see cref="Pr2Exception.IsRetriable"/>) leave the outcome unknown: send the same batch again.
    /// </summary>
    Task<BatchAck> Send(Message[] messages);
}
