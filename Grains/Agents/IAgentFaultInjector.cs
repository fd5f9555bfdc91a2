namespace PR2.Grains.Agents;

/// <summary>
/// A test hook: called after an agent applied a batch and before its mark moves, inside the same
/// transaction. Throwing here is a crash between effect and mark. The default does nothing.
/// </summary>
public interface IAgentFaultInjector
{
    void AfterEffects(string agent, int sourceShard, IReadOnlyList<JournalEntry> entries);
}
