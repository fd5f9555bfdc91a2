namespace PR2.Grains.Storage;

/// <summary>
/// Which replica of a shard is the primary, as the shard's writer grain decides it. Each silo keeps its own
/// <see cref="ShardReplicaSet"/>; one that did not run a fail-over learns of it only by asking, so reads that
/// must see the primary ask first (a former primary that is reachable again can be behind).
/// </summary>
public static class CurrentPrimary
{
    /// <summary>Asks the writer (at most <paramref name="timeout"/>), records the answer in this silo's set, and returns it.</summary>
    /// <exception cref="Pr2Exception">ShardUnavailable when the writer did not answer in time (a fail-over in progress).</exception>
    public static async Task<int> AskAsync(IGrainFactory grains, ShardReplicaSet set, TimeSpan timeout)
    {
        try
        {
            var primary = await grains.GetGrain<IShardWriterGrain>(set.Shard).GetPrimary().WaitAsync(timeout);
            set.Promote(primary);
            return primary;
        }
        catch (TimeoutException)
        {
            throw new Pr2Exception(ErrorCode.ShardUnavailable,
                $"shard {set.Shard} has no primary answering within {timeout.TotalSeconds:0.#} s (fail-over in progress?); retry");
        }
    }
}
