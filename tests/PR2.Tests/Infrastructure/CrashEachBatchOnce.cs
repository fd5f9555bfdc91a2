using System.Collections.Concurrent;
using PR2.Grains.Agents;

namespace PR2.Tests.Infrastructure;

/// <summary>
/// Crashes the named agents once on every batch, after its effects and before its mark (the agent runner's
/// fault hook): the transaction rolls back, and the retry must neither skip nor repeat anything.
/// </summary>
public sealed class CrashEachBatchOnce(params string[] agents) : IAgentFaultInjector
{
    private readonly ConcurrentDictionary<(string Agent, int Shard, long First), bool> _crashed = new();
    private int _crashes;

    public int Crashes => _crashes;

    public void AfterEffects(string agentName, int sourceShard, IReadOnlyList<JournalEntry> entries)
    {
        if (agents.Contains(agentName) && _crashed.TryAdd((agentName, sourceShard, entries[0].Position), true))
        {
            Interlocked.Increment(ref _crashes);
            throw new InvalidOperationException($"injected crash between effect and mark at {sourceShard}:{entries[0].Position}");
        }
    }
}
