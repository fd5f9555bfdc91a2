using Microsoft.Extensions.Logging;
using PR2.Grains.Rules;
using PR2.Grains.Storage;

namespace PR2.Grains.Agents;

/// <summary>
/// Keeps every agent (and each shard's anti-entropy) running: once the silo is active, and then every
/// few seconds, it wakes each (agent, shard, replica) grain. Every silo does this, so agents come back wherever the cluster places them
/// after a silo stops; a wake-up of a running agent costs one one-way call. Each round first follows the directory
/// (<see cref="TopologyFollower"/>): a shard added at runtime gets its agents in the round that finds it.
/// </summary>
public sealed class AgentSupervisor(AgentCatalog catalog, RuleSet rules, ShardRegistry shards, TopologyFollower topology, IGrainFactory grains, ILogger<AgentSupervisor> logger)
    : ILifecycleParticipant<ISiloLifecycle>
{
    private static readonly TimeSpan Period = TimeSpan.FromSeconds(5);

    private readonly CancellationTokenSource _stopping = new();
    private Task? _loop;

    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(AgentSupervisor), ServiceLifecycleStage.Active, OnStartAsync, OnStopAsync);

    private Task OnStartAsync(CancellationToken cancellationToken)
    {
        _loop = Task.Run(RunAsync, CancellationToken.None);
        return Task.CompletedTask;
    }

    private async Task OnStopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        if (_loop is not null)
        {
            await _loop.WaitAsync(cancellationToken).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    private async Task RunAsync()
    {
        using var timer = new PeriodicTimer(Period);
        do
        {
            // Shards are added at runtime, possibly on another silo: join the ones the directory records.
            try
            {
                await topology.RefreshAsync();
            }
            catch (Exception e) when (!_stopping.IsCancellationRequested)
            {
                Log.AgentWakeFailed(logger, e, "topology");
            }

            // Rules are changed at runtime, possibly on another silo: pick up the current set.
            try
            {
                await rules.RefreshAsync(grains);
            }
            catch (Exception e) when (!_stopping.IsCancellationRequested)
            {
                Log.AgentWakeFailed(logger, e, "rules");
            }

            // A removal goes on wherever its grain is placed now (its state is in the directory and the databases).
            foreach (var shard in topology.Removing)
            {
                try
                {
                    await grains.GetGrain<IShardRemovalGrain>(shard).Wake();
                }
                catch (Exception e) when (!_stopping.IsCancellationRequested)
                {
                    Log.AgentWakeFailed(logger, e, $"removal/{shard}");
                }
            }

            // Anti-entropy runs for every shard with more than one replica.
            foreach (var shard in shards.Sets.Where(s => s.Replicas.Count > 1).Select(s => s.Shard))
            {
                try
                {
                    await grains.GetGrain<IAntiEntropyGrain>(shard).Wake();
                }
                catch (Exception e) when (!_stopping.IsCancellationRequested)
                {
                    Log.AgentWakeFailed(logger, e, $"anti-entropy/{shard}");
                }
            }

            // Outboxes may hold messages from before a restart (data or C# rules wrote them); their relays deliver them.
            foreach (var shard in catalog.Agents.Any(a => a.Name.StartsWith(RuleAgent.Prefix, StringComparison.Ordinal)) ? shards.ShardCodes : [])
            {
                try
                {
                    await grains.GetGrain<IOutboxRelayGrain>(shard).Wake();
                }
                catch (Exception e) when (!_stopping.IsCancellationRequested)
                {
                    Log.AgentWakeFailed(logger, e, $"outbox/{shard}");
                }
            }

            // A rebuild (the records view's, a rule's views', the object directory's) goes on wherever its grain is placed now (its state is in the
            // replica's database).
            foreach (var set in shards.Sets)
            {
                var shard = set.Shard;
                var projections = catalog.Agents.Where(a => Projections.RuleViewRebuild.For(a) is not null && a.Follows(shard)).Select(a => a.Name).Prepend(RecordsProjector.AgentName).ToList();
                if (shard == 0)
                {
                    // The object directory's rebuild runs in one of shard 0's replicas and follows every shard.
                    projections.Add(ObjectDirectoryProjector.AgentName);
                }

                foreach (var replica in set.Live)
                {
                    foreach (var projection in projections)
                    {
                        try
                        {
                            await grains.GetGrain<IProjectionRebuildGrain>(AgentCatalog.Key(projection, shard, replica)).Wake();
                        }
                        catch (Exception e) when (!_stopping.IsCancellationRequested)
                        {
                            Log.AgentWakeFailed(logger, e, $"rebuild {projection}/{shard}@{replica}");
                        }
                    }
                }
            }

            foreach (var key in catalog.AllKeys())
            {
                try
                {
                    await grains.GetGrain<IAgentGrain>(key).Wake();
                }
                catch (Exception e) when (!_stopping.IsCancellationRequested)
                {
                    Log.AgentWakeFailed(logger, e, key);
                }
            }
        }
        while (await WaitAsync(timer));
    }

    private async Task<bool> WaitAsync(PeriodicTimer timer)
    {
        try
        {
            return await timer.WaitForNextTickAsync(_stopping.Token);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
