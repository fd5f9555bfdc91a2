namespace PR2.Grains.Agents;

/// <summary>Production behaviour: no injected faults.</summary>
public sealed class NoAgentFaults : IAgentFaultInjector
{
    public void AfterEffects(string agent, int sourceShard, IReadOnlyList<JournalEntry> entries)
    {
    }
}
