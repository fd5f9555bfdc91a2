using Npgsql;

namespace PR2.Grains.Replication;

/// <summary>
/// Holds acknowledgements back until enough replicas hold what the primary holds: after a group commit it
/// pushes the primary's entries to the other replicas (the anti-entropy step, synchronously) and counts
/// the replicas whose version vector covers the primary's and that no writer newer than this one (a higher
/// <paramref name="term"/>) has fenced: a replica a newer writer fenced may have been read by it already, so a copy
/// there proves nothing. Fails when too few can be reached in time.
/// </summary>
public sealed class ReplicationGate(int shard, NpgsqlDataSource primary, IReadOnlyList<NpgsqlDataSource> others, int requiredCopies, TimeSpan timeout, long term)
{
    // A replica that just failed to take a copy is not waited for again until this much later, so that
    // batches queued behind a failing one fail fast instead of each waiting out the timeout.
    private static readonly TimeSpan Recheck = TimeSpan.FromSeconds(2);

    private readonly DateTime[] _skipUntil = new DateTime[others.Count];

    public async Task EnsureAsync()
    {
        var needed = requiredCopies - 1;
        if (needed <= 0)
        {
            return;
        }

        // Not disposed here: copies still running when enough others confirmed go on in the background
        // (saving anti-entropy the work) and stop at the same deadline.
        var deadline = new CancellationTokenSource(timeout);
        var target = await VersionVector.ReadAsync(primary, deadline.Token);
        var now = DateTime.UtcNow;
        var copies = others.Select(async (replica, i) =>
        {
            if (_skipUntil[i] > now)
            {
                return false;
            }

            var ok = await CopyAsync(replica, target, deadline.Token);
            _skipUntil[i] = ok ? DateTime.MinValue : DateTime.UtcNow + Recheck;
            return ok;
        }).ToList();
        _ = Task.WhenAll(copies).ContinueWith(_ => deadline.Dispose(), TaskScheduler.Default);

        // The ack waits for the fastest copies the policy needs, not for a slow or paused replica beyond them.
        var held = 0;
        var running = new List<Task<bool>>(copies);
        while (held < needed && running.Count >= needed - held)
        {
            var done = await Task.WhenAny(running);
            running.Remove(done);
            held += await done ? 1 : 0;
        }

        if (held < needed)
        {
            // Refused: count the copies still running too, so that the error says how many replicas hold it.
            held += (await Task.WhenAll(running)).Count(ok => ok);
        }

        if (held < needed)
        {
            throw new Pr2Exception(ErrorCode.ShardUnavailable,
                $"shard {shard}: committed on the primary but only {held + 1} of the {requiredCopies} replicas the ack policy needs hold it; " +
                "the outcome is not acknowledged, retry with the same MessageId");
        }
    }

    private async Task<bool> CopyAsync(NpgsqlDataSource replica, VersionVector target, CancellationToken cancellationToken)
    {
        try
        {
            // A concurrent anti-entropy step can make one push give way; a few rounds settle it.
            for (var round = 0; round < 5; round++)
            {
                await ReplicaSync.PushAllAsync(primary, replica, cancellationToken: cancellationToken);
                var (held, epoch) = await VersionVector.ReadWithEpochAsync(replica, cancellationToken);
                if (epoch > term)
                {
                    // A newer writer fenced it: this writer's acknowledgements can no longer count on it.
                    return false;
                }

                if (target.Positions.All(p => held[p.Key] >= p.Value))
                {
                    return true;
                }
            }

            return false;
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
        {
            return false;
        }
    }
}
