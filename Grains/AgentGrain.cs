using Microsoft.Extensions.Logging;
using Orleans.Concurrency;
using PR2.Grains.Agents;
using PR2.Grains.Rules;
using PR2.Grains.Storage;
using PR2.Grains.Writing;

namespace PR2.Grains;

/// <summary>
/// Hosts an <see cref="AgentRunner"/> for one (agent, shard). Reentrant so that wake-ups arriving while
/// it runs only raise a flag; one drain loop runs at a time (grain turns are single-threaded). A timer
/// (which keeps the activation alive) retries after failures and catches anything a wake-up missed.
/// </summary>
[Reentrant]
public sealed class AgentGrain(AgentCatalog catalog, ShardRegistry shards, TopologyFollower topology, IAgentFaultInjector faults, RecentEntries recent, ILogger<AgentGrain> logger)
    : Grain, IAgentGrain
{
    private static readonly TimeSpan TimerPeriod = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan HomeAskTimeout = TimeSpan.FromSeconds(2);

    // After a drain, wait this long before the next: under load one agent transaction then covers many
    // writer commits instead of one each. It bounds how much projection lag pacing adds.
    private static readonly TimeSpan Pacing = TimeSpan.FromMilliseconds(20);

    private string _agent = "";
    private int _shard;
    private int _replica;
    private Task? _draining;
    private bool _wanted;

    // Drains in a row that failed to reach a database. Perhaps only this silo cannot reach that server (cut off from it):
    // after a few the activation goes, so that the next wake-up may place it on a silo that can.
    private int _unreachable;
    private const int UnreachableBeforeMoving = 3;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        (_agent, _shard, _replica) = AgentCatalog.ParseKey(this.GetPrimaryKeyString());
        this.RegisterGrainTimer(_ =>
            {
                // A removed shard's agents have nothing more to follow: the timer no longer keeps them.
                if (shards.IsRemoved(_shard))
                {
                    DeactivateOnIdle();
                    return Task.CompletedTask;
                }

                Wake();
                return Task.CompletedTask;
            },
            new GrainTimerCreationOptions(TimerPeriod, TimerPeriod) { KeepAlive = true, Interleave = true });
        return ActivateAsync();
    }

    // A shard, or a replica of it, added a moment ago on another silo may not have reached this one: the directory says.
    private async Task ActivateAsync()
    {
        if (await topology.KnowsAsync(_shard) && !Follows())
        {
            await topology.RefreshShardAsync(_shard);
        }
    }

    private static bool IsUnreachable(Exception e) => e switch
    {
        Npgsql.NpgsqlException { IsTransient: true } or TimeoutException or IOException or System.Net.Sockets.SocketException => true,
        _ => e.InnerException is { } inner && IsUnreachable(inner),
    };

    // Whether this silo knows the replica this agent follows (a replica added at runtime reaches silos in turn).
    private bool Follows() => shards.Contains(_shard) && _replica < shards.Get(_shard).Replicas.Count && !shards.Get(_shard).IsRemoved(_replica);

    public Task Wake()
    {
        _wanted = true;
        _draining ??= DrainAsync();
        return Task.CompletedTask;
    }

    public async Task<long> CatchUp()
    {
        // May run beside a drain: the mark's row lock in the database serializes the two.
        var agent = catalog.Find(_agent) ?? throw new InvalidOperationException($"agent {_agent} is not known to this silo (a rule removed or not loaded yet)");
        if (!Follows())
        {
            await topology.RefreshShardAsync(_shard);
            if (!Follows())
            {
                throw new Pr2Exception(ErrorCode.BadMessage, $"shard {_shard} has no replica {_replica} (or it was removed)");
            }
        }

        var runner = new AgentRunner(agent, _shard, shards, faults, replica: _replica, recent: recent);
        if (!agent.Paused)
        {
            await runner.CatchUpAsync();
        }

        return await AgentMarks.ReadAsync(runner.Home, runner.MarkName, _shard);
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
                if (Runner() is not { } runner)
                {
                    break;
                }

                await FollowHomePrimaryAsync(runner);

                var applied = await runner.CatchUpAsync();
                if (applied > 0)
                {
                    if (_agent.StartsWith(RuleAgent.Prefix, StringComparison.Ordinal))
                    {
                        // A rule may have written messages to its shard's outbox.
                        GrainFactory.GetGrain<IOutboxRelayGrain>(_shard).Wake().Ignore();
                    }

                    await Task.Delay(Pacing);
                }
            }

            _unreachable = 0;
        }
        catch (Exception e)
        {
            // The timer wakes us again; the mark did not move, so nothing is lost or doubled.
            Log.AgentFailed(logger, e, _agent, _shard);
            if (IsUnreachable(e) && ++_unreachable >= UnreachableBeforeMoving)
            {
                DeactivateOnIdle();
            }
        }
        finally
        {
            _draining = null;
        }
    }

    // An agent whose effects live in another shard's primary (the object directory, in shard 0) writes where that
    // shard's writer says the primary is, maybe after a fail-over run on another silo. Its marks are beside its
    // effects in whichever database that is, so writing to a former primary would be consistent, only not seen.
    private async Task FollowHomePrimaryAsync(AgentRunner runner)
    {
        if (catalog.Find(_agent) is { } agent && (!agent.PerReplica || agent.HomeShard(_shard) != _shard))
        {
            try
            {
                await CurrentPrimary.AskAsync(GrainFactory, shards.Get(agent.HomeShard(_shard)), HomeAskTimeout);
            }
            catch (Pr2Exception)
            {
                // No answer now (a fail-over in progress): go on with what this silo knows; the next drain asks again.
            }
        }
    }

    // Built for each drain from the catalog's current agent: rules change (replaced, paused, removed) at runtime.
    private AgentRunner? Runner() =>
        catalog.Find(_agent) is { Paused: false } agent && Follows() ? new AgentRunner(agent, _shard, shards, faults, replica: _replica, recent: recent) : null;
}
