using Microsoft.Extensions.Logging;
using Orleans.Concurrency;
using PR2.Grains.Agents;
using PR2.Grains.Replication;
using PR2.Grains.Storage;

namespace PR2.Grains;

/// <summary>
/// Runs <see cref="ReplicaSync"/> between all replicas of one shard. Reentrant with one pass at a time,
/// like the agents; after entries land on a replica, that replica's per-replica agents are woken. Each
/// pass first probes every replica (<see cref="ReplicaHealth"/>): replicas that are down are skipped, and a
/// change of any replica's state is recorded in the directory.
/// </summary>
[Reentrant]
public sealed class AntiEntropyGrain(ShardRegistry shards, TopologyFollower topology, AgentCatalog agents, ILogger<AntiEntropyGrain> logger)
    : Grain, IAntiEntropyGrain
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan AdmissionRetry = TimeSpan.FromSeconds(2);

    private Task<long>? _pass;
    private bool _wanted;
    private TimeSpan _backoff = Tick;
    private DateTime _nextRun = DateTime.MinValue;
    private IReadOnlyList<string>? _recordedStates;
    private Task? _recording;
    private Task? _admitting;
    private DateTime _nextAdmission = DateTime.MinValue;

    private int ShardCode => (int)this.GetPrimaryKeyLong();

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        this.RegisterGrainTimer(_ =>
        {
            if (shards.IsRemoved(ShardCode))
            {
                DeactivateOnIdle(); // a removed shard: nothing left to copy
                return Task.CompletedTask;
            }

            if (DateTime.UtcNow >= _nextRun)
            {
                Wake();
            }

            // A shard added a moment ago on another silo may not have reached this one: the directory says.
        return topology.KnowsAsync(this.GetPrimaryKeyLong());
        }, new GrainTimerCreationOptions(Tick, Tick) { KeepAlive = true, Interleave = true });
        return Task.CompletedTask;
    }

    public Task Wake()
    {
        _wanted = true;
        if (_pass is null)
        {
            _pass = DrainAsync();
        }

        return Task.CompletedTask;
    }

    public async Task<long> SyncNow()
    {
        long total = 0;
        long moved;
        do
        {
            while (_pass is { } running)
            {
                total += await running;
            }

            moved = await PassAsync();
            total += moved;
        }
        while (moved > 0);
        return total;
    }

    private async Task<long> DrainAsync()
    {
        await Task.Yield();
        long total = 0;
        try
        {
            while (_wanted)
            {
                _wanted = false;
                var moved = await PassAsync();
                total += moved;
                _backoff = moved > 0 ? Tick : TimeSpan.FromTicks(Math.Min(MaxBackoff.Ticks, _backoff.Ticks * 2));
                _nextRun = DateTime.UtcNow + _backoff;
            }
        }
        finally
        {
            _pass = null;
        }

        return total;
    }

    // One push for every ordered pair of replicas that answer (each until in sync).
    private async Task<long> PassAsync()
    {
        var set = shards.Get(ShardCode);
        var replicas = set.Replicas;
        var health = await ReplicaHealth.ProbeAsync(replicas, set.Removed);
        RecordStatesIfChanged(health.States);
        AdmitCaughtUp(set, health);
        long total = 0;
        for (var from = 0; from < replicas.Count; from++)
        {
            for (var to = 0; to < replicas.Count; to++)
            {
                if (from == to || health.IsDown(from) || health.IsDown(to))
                {
                    continue;
                }

                try
                {
                    var moved = await ReplicaSync.PushAllAsync(replicas[from], replicas[to]);
                    if (moved > 0)
                    {
                        total += moved;
                        Pr2Metrics.AntiEntropyCopied.Add(moved, new KeyValuePair<string, object?>("shard", ShardCode));
                        foreach (var key in agents.KeysFollowing(ShardCode, to))
                        {
                            await GrainFactory.GetGrain<IAgentGrain>(key).Wake();
                        }
                    }
                }
                catch (Exception e)
                {
                    Log.AntiEntropyFailed(logger, e, ShardCode, from, to);
                }
            }
        }

        return total;
    }

    // A joining replica that lacks little (its state is up) is asked to be admitted by the writer, in the background and
    // one at a time; after a refusal (still behind, the writer failing over) not again for a while.
    private void AdmitCaughtUp(ShardReplicaSet set, ReplicaHealth health)
    {
        if (_admitting is { IsCompleted: false } || DateTime.UtcNow < _nextAdmission)
        {
            return;
        }

        var ready = set.Joining.Where(j => j < health.States.Count && health.States[j] == ReplicaHealth.Up).Order().ToList();
        if (ready.Count == 0)
        {
            return;
        }

        _admitting = AdmitAsync(ready[0]);

        async Task AdmitAsync(int replica)
        {
            try
            {
                await GrainFactory.GetGrain<IShardWriterGrain>(ShardCode).AdmitReplica(replica);
            }
            catch (Exception e)
            {
                Log.ReplicaNotAdmitted(logger, ShardCode, replica, e.Message);
                _nextAdmission = DateTime.UtcNow + AdmissionRetry;
            }
        }
    }

    // In the background (the directory lives in shard 0, which may itself be failing over); one at a time,
    // and only what changed since the last state recorded.
    private void RecordStatesIfChanged(IReadOnlyList<string> states)
    {
        if (_recording is { IsCompleted: false } || (_recordedStates is { } recorded && recorded.SequenceEqual(states)))
        {
            return;
        }

        _recording = RecordAsync();

        async Task RecordAsync()
        {
            try
            {
                if (await GrainFactory.GetGrain<IDirectoryGrain>(0).RecordReplicaStates(ShardCode, states))
                {
                    _recordedStates = states;
                }
            }
            catch (Exception e)
            {
                Log.ReplicaStatesNotRecorded(logger, e, ShardCode);
            }
        }
    }
}
