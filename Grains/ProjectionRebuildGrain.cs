using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Orleans.Concurrency;
using PR2.Grains.Agents;
using PR2.Grains.Configuration;
using PR2.Grains.Projections;
using PR2.Grains.Storage;

namespace PR2.Grains;

/// <summary>
/// Runs one replica's rebuild of one projection: the records view (<see cref="RecordsRebuild"/>), a rule's views
/// (<see cref="RuleViewRebuild"/>, key <c>rule-{name}/{shard}@{replica}</c>) or the object directory in one of shard 0's
/// replicas (<see cref="ObjectDirectoryRebuild"/>, key <c>object-directory/0@{replica}</c>, folding every shard's journals).
/// Folds the journal into the shadow in batches,
/// then tries the swap, until it is swapped in. Reentrant so that status and wake-ups answer while it folds; one loop runs
/// at a time. Its state is in the replica's database, so a new activation (a silo gone) goes on from the shadow's mark.
/// </summary>
[Reentrant]
public sealed class ProjectionRebuildGrain(ShardRegistry shards, TopologyFollower topology, IAgentFaultInjector faults, IOptions<ProjectionOptions> options,
    AgentCatalog catalog, Rules.RuleSet rules, ILogger<ProjectionRebuildGrain> logger)
    : Grain, IProjectionRebuildGrain
{
    // Larger than an agent's batch: the rebuild has a whole journal to fold, and nobody waits on its mark.
    private const int FoldBatch = 2_000;

    private static readonly TimeSpan TimerPeriod = TimeSpan.FromSeconds(1);

    // After a swap found the view held (a backup), wait this long before the next try, doubling up to MaxBackoff.
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(10);

    // A fold that found nothing new while the swap says the shadow is behind waits this long before looking again.
    private static readonly TimeSpan Idle = TimeSpan.FromMilliseconds(100);

    private string _projection = RecordsRebuild.Projection;
    private int _shard;
    private int _replica;

    // What differs between the records view's rebuild and a rule's views': picked once, from the key, at activation.
    private IProjectionRebuild _rebuild = null!;

    private bool? _building;

    // A cancel is under way: the fold it stopped ends quietly (not a failure to log, nor an error to show in the status).
    private bool _canceling;

    // Counts starts: a loop that found no rebuild while a start was committing looks again before it ends.
    private int _starts;
    private Task? _running;

    // Stops the fold of the loop running now when its rebuild is canceled (a batch in flight rolls back).
    private CancellationTokenSource _foldStop = new();
    private IGrainTimer? _timer;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        (_projection, _shard, _replica) = AgentCatalog.ParseKey(this.GetPrimaryKeyString());
        _rebuild = _projection == RecordsRebuild.Projection ? new RecordsRebuildOnReplica(_shard, _replica)
            : _projection == ObjectDirectoryRebuild.Projection && _shard == 0 ? new ObjectDirectoryRebuildOnReplica(_replica, shards, topology, faults, FoldBatch, GrainFactory)
            : new RuleViewRebuildOnReplica(_projection, _shard, _replica, RuleAsync);
        if (await topology.KnowsAsync(_shard) && !Follows())
        {
            await topology.RefreshShardAsync(_shard);
        }
    }

    public async Task<long> Start(bool restart = false)
    {
        if (!Follows())
        {
            throw new Pr2Exception(ErrorCode.BadMessage, $"shard {_shard} has no replica {_replica} (or it was removed)");
        }

        var generation = await OnReplicaAsync(() => _rebuild.StartAsync(Source, restart));
        _building = true;
        _starts++;
        Run();
        return generation;
    }

    public async Task<long?> Cancel()
    {
        if (!Follows())
        {
            throw new Pr2Exception(ErrorCode.BadMessage, $"shard {_shard} has no replica {_replica} (or it was removed)");
        }

        // The fold stops first (its batch in flight rolls back; the object directory's holds the row a cancel locks), then
        // the rebuild is canceled; the loop, finding it so (or the shadow gone), ends quietly. Not canceled (the replica did
        // not answer): the next wake folds on.
        _canceling = true;
        await _foldStop.CancelAsync();
        long? canceled;
        try
        {
            canceled = await OnReplicaAsync(() => _rebuild.CancelAsync(Source));
        }
        finally
        {
            _canceling = false;
        }

        if (canceled is not null)
        {
            _building = false;
            if (_running is null)
            {
                StopTimer();
            }
        }

        return canceled;
    }

    public async Task<ProjectionReplicaStatus> Status() => await _rebuild.StatusAsync(Source);

    public Task Wake()
    {
        if (_building != false)
        {
            Run();
        }

        return Task.CompletedTask;
    }

    private void StopTimer()
    {
        _timer?.Dispose();
        _timer = null;
    }

    // The replica not answering, or a lock held past its timeout, as a retriable refusal that says which replica (the
    // database's own exceptions do not all cross to the caller).
    private async Task<T> OnReplicaAsync<T>(Func<Task<T>> action)
    {
        try
        {
            return await action();
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            throw new Pr2Exception(ErrorCode.ShardUnavailable, $"replica {_replica} of shard {_shard}: {DatabaseFailure.Describe(e)}; retry");
        }
    }

    // The rule as this silo knows it now (asked of the directory once when unknown here: it may have been added elsewhere).
    private async Task<IJournalAgent?> RuleAsync()
    {
        if (catalog.Find(_projection) is { } known)
        {
            return known;
        }

        await rules.RefreshAsync(GrainFactory);
        return catalog.Find(_projection);
    }

    private NpgsqlDataSource Source => shards.Get(_shard).Replicas[_replica];

    private bool Follows() => shards.Contains(_shard) && _replica < shards.Get(_shard).Replicas.Count && !shards.Get(_shard).IsRemoved(_replica);

    private void Run()
    {
        if (_running is null)
        {
            if (_foldStop.IsCancellationRequested)
            {
                _foldStop.Dispose();
                _foldStop = new CancellationTokenSource();
            }

            _running = RunAsync();
        }
    }

    private async Task RunAsync()
    {
        // Yield first, so that _running is assigned before this can finish and clear it.
        await Task.Yield();
        try
        {
            var clock = Stopwatch.StartNew();
            IReadOnlyList<AgentRunner>? folds = null;
            var backoff = FirstBackoff;
            // Each turn asks again: the replica may have been removed, or restored without the rebuild, meanwhile.
            while (Follows())
            {
                var starts = _starts;
                if (!await RebuildRows.BuildingAsync(Source, _projection))
                {
                    if (starts == _starts)
                    {
                        break;
                    }

                    // A start committed while this looked: look again.
                    continue;
                }

                // While a rebuild runs the timer keeps the activation (and the fold) going between wake-ups.
                _timer ??= this.RegisterGrainTimer(_ =>
                {
                    if (shards.IsRemoved(_shard))
                    {
                        DeactivateOnIdle(); // a removed shard: its views went with it
                        return Task.CompletedTask;
                    }

                    return Wake();
                }, new GrainTimerCreationOptions(TimerPeriod, TimerPeriod) { KeepAlive = true, Interleave = true });
                // The records view keeps its fold; a rule's is made anew each turn (the rule may have been replaced or removed).
                folds = await _rebuild.FoldsAsync(folds, agent => new AgentRunner(agent, _shard, shards, faults, FoldBatch, _replica));
                var folded = await FoldAsync(folds);
                var (outcome, position, busy) = await TrySwapAsync();
                // Every outcome goes round again: after a swap (or none in progress), the next turn finds the row done and
                // ends, unless another start came meanwhile.
                switch (outcome)
                {
                    case SwapOutcome.Swapped:
                        Log.RebuildSwapped(logger, _projection, _shard, _replica, position, clock.Elapsed.TotalSeconds);
                        clock.Restart();
                        continue;
                    case SwapOutcome.Busy:
                        // Said in the status: a swap that keeps waiting must say for what.
                        await RebuildRows.RecordErrorAsync(Source, _projection, $"the swap waits: {busy}");
                        await Task.Delay(backoff);
                        backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
                        continue;
                    case SwapOutcome.Restarted:
                        Log.RebuildRestarted(logger, _projection, _shard, _replica);
                        folds = null;
                        continue;
                    case SwapOutcome.Behind when folded == 0:
                        await Task.Delay(Idle);
                        continue;
                    default:
                        continue;
                }
            }

            _building = false;
            StopTimer();
        }
        catch (Exception e) when (_building == false || _canceling)
        {
            // Canceled under it (the shadow was dropped): nothing to go on with.
            Log.RebuildCanceled(logger, _projection, _shard, _replica, DatabaseFailure.Describe(e));
            StopTimer();
        }
        catch (Exception e)
        {
            // The timer (or the next supervisor wake) goes on from the shadow's mark: nothing folded is lost or doubled.
            Log.RebuildFailed(logger, e, _projection, _shard, _replica);
            try
            {
                await RebuildRows.RecordErrorAsync(Source, _projection, DatabaseFailure.Describe(e));
            }
            catch (NpgsqlException)
            {
                // Best effort: the replica may be the thing that failed.
            }
        }
        finally
        {
            _running = null;
        }
    }

    // Folds each until caught up, no faster than Pr2:Projections:RebuildEntriesPerSecond when it is set. Of several (the
    // object directory's, one per journal), one whose journal does not answer holds back none of the others: its failure is
    // said in the status, and it is tried again next turn.
    private async Task<long> FoldAsync(IReadOnlyList<AgentRunner> folds)
    {
        var rate = options.Value.RebuildEntriesPerSecond;
        var clock = Stopwatch.StartNew();
        long folded = 0;
        var failures = new List<string>();
        foreach (var fold in folds)
        {
            try
            {
                if (rate <= 0)
                {
                    folded += await fold.CatchUpAsync(_foldStop.Token);
                    continue;
                }

                while (await fold.RunOnceAsync(_foldStop.Token) is var applied and > 0)
                {
                    folded += applied;
                    var due = TimeSpan.FromSeconds(folded / (double)rate);
                    if (due > clock.Elapsed)
                    {
                        await Task.Delay(due - clock.Elapsed, _foldStop.Token);
                    }
                }
            }
            catch (Exception e) when (folds.Count > 1 && e is NpgsqlException or TimeoutException && !_foldStop.IsCancellationRequested)
            {
                failures.Add($"shard {fold.SourceShard} replica {fold.Replica}: {DatabaseFailure.Describe(e)}");
            }
        }

        if (failures.Count > 0)
        {
            await RebuildRows.RecordErrorAsync(Source, _projection, $"folding waits for {string.Join("; ", failures)}");
        }

        return folded;
    }

    // A swap that waited too long for a lock, or ran too long holding the live mark, gave up with nothing changed: as when
    // the view is held, try again later.
    private async Task<(SwapOutcome Outcome, long Position, string? Busy)> TrySwapAsync()
    {
        try
        {
            return await _rebuild.TrySwapAsync(Source);
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.LockNotAvailable or PostgresErrorCodes.QueryCanceled or PostgresErrorCodes.DeadlockDetected)
        {
            return (SwapOutcome.Busy, 0, e.MessageText);
        }
    }
}
