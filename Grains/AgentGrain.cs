using Microsoft.Extensions.Logging;
using Orleans.Concurrency;
using PR2.Grains.Agents;
using PR2.Grains.Storage;

namespace PR2.Grains;

/// <summary>
/// Hosts an <see cref="AgentRunner"/> for one (agent, shard). Reentrant so that wake-ups arriving while
/// it runs only raise a flag; one drain loop runs at a time (grain turns are single-threaded). A timer
/// (which keeps the activation alive) retries after failures and catches anything a wake-up missed.
/// </summary>
[Reentrant]
public sealed class AgentGrain(AgentCatalog catalog, ShardRegistry shards, IAgentFaultInjector faults, ILogger<AgentGrain> logger)
    : Grain, IAgentGrain
{
    private static readonly TimeSpan TimerPeriod = TimeSpan.FromSeconds(1);

    // After a drain, wait this long before the next: under load one agent transaction then covers many
    // writer commits instead of one each. It bounds how much projection lag pacing adds.
    private static readonly TimeSpan Pacing = TimeSpan.FromMilliseconds(20);

    private AgentRunner _runner = null!;
    private Task? _draining;
    private bool _wanted;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var (agent, shard, replica) = AgentCatalog.ParseKey(this.GetPrimaryKeyString());
        _runner = new AgentRunner(catalog.Get(agent), shard, shards, faults, replica: replica);
        this.RegisterGrainTimer(_ => { Wake(); return Task.CompletedTask; },
            new GrainTimerCreationOptions(TimerPeriod, TimerPeriod) { KeepAlive = true, Interleave = true });
        return Task.CompletedTask;
    }

    public Task Wake()
    {
        _wanted = true;
        _draining ??= DrainAsync();
        return Task.CompletedTask;
    }

    public async Task<long> CatchUp()
    {
        // May run beside a drain: the mark's row lock in the database serializes the two.
        await _runner.CatchUpAsync();
        return await ReadMarkAsync();
    }

    private async Task DrainAsync()
    {
        // Yield first, so that _draining is assigned before this can finish and clear it.
        await Task.Yield();
        try
        {
            while (_wanted)
            {
                _wanted = false;
                if (await _runner.CatchUpAsync() > 0)
                {
                    await Task.Delay(Pacing);
                }
            }
        }
        catch (Exception e)
        {
            // The timer wakes us again; the mark did not move, so nothing is lost or doubled.
            Log.AgentFailed(logger, e, _runner.Agent, _runner.SourceShard);
        }
        finally
        {
            _draining = null;
        }
    }

    private Task<long> ReadMarkAsync() => AgentMarks.ReadAsync(_runner.Home, _runner.Agent, _runner.SourceShard);
}
