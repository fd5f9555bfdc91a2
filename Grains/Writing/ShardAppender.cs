using Microsoft.Extensions.Logging;

namespace PR2.Grains.Writing;

/// <summary>
/// Hands an append to its shard's journal writer: straight to the writer when it is open in this silo, through the
/// writer grain otherwise, and whenever the local writer stalls or stops (the grain owns fail-over). Sending the
/// same request twice is safe: the second is answered by MessageId. Used by the actor grain and by the insert path.
/// </summary>
public sealed class ShardAppender(LocalJournalWriters localWriters, IGrainFactory grains, ILogger<ShardAppender> logger)
{
    // An append to this silo's writer without an answer for this long goes to the writer grain, which probes
    // the primary and fails over if it must (the same limit the grain waits before it probes).
    private static readonly TimeSpan LocalAppendLimit = TimeSpan.FromSeconds(1);

    public async Task<WriteAck> AppendAsync(int shard, AppendRequest request, CancellationToken budget)
    {
        var writerGrain = grains.GetGrain<IShardWriterGrain>(shard);
        if (localWriters.Find(shard) is not { } writer)
        {
            return await writerGrain.Append(request).WaitAsync(budget);
        }

        if (writer.TryAppendAsync(request) is not { } pending)
        {
            // Not queued (the writer closed for a move of the primary, or was given up): nothing of it was written.
            return await writerGrain.Append(request).WaitAsync(budget);
        }

        try
        {
            return await pending.WaitAsync(LocalAppendLimit, budget);
        }
        catch (TimeoutException)
        {
            Log.LocalAppendStalled(logger, shard);
        }
        catch (Pr2Exception e) when (!writer.IsOpen && e.Code != ErrorCode.WriterFenced)
        {
            // Closed or broken while this append waited (its commit may have happened): the grain opens or finds the next one.
        }
        catch (Pr2Exception e) when (e.Code == ErrorCode.WriterFenced)
        {
            // Fenced before its commit: nothing of this attempt was written.
            return await writerGrain.Append(request).WaitAsync(budget);
        }

        // The first attempt may still commit: the grain answers for this call, not as if it were another one.
        return await writerGrain.AppendAgain(request).WaitAsync(budget);
    }

    /// <summary>
    /// An atomic batch (see <see cref="IShardWriterGrain.AppendBatch"/>), always through the writer grain: a batch is
    /// judged by the writer alone, and only the grain knows what a writer it gave up may still commit (it settles that
    /// before the batch is judged, so a refusal is final), and it waits out a slow commit by probing the primary instead
    /// of resending after a second (a large batch takes longer than that).
    /// </summary>
    public Task<BatchAck> AppendBatchAsync(int shard, AppendRequest[] requests, CancellationToken budget) =>
        grains.GetGrain<IShardWriterGrain>(shard).AppendBatch(requests, attemptedBefore: false).WaitAsync(budget);

    /// <summary>What a caller gets when its call's budget ran out before the shard confirmed the write.</summary>
    public static Pr2Exception Unconfirmed(int shard, double budgetSeconds) => new(ErrorCode.ShardUnavailable,
        $"shard {shard} did not confirm the write within {budgetSeconds:0.#} s; the outcome is unknown, retry with the same MessageId");
}
