namespace PR2.Grains.Agents;

/// <summary>
/// An agent cannot go past the entry at <see cref="Position"/> (a rule with <c>onError: halt</c>). The runner
/// commits the entries before it (so a batch does not lose them) and stays at it until the agent changes.
/// </summary>
public sealed class AgentStoppedException(long position, string message, Exception? inner = null) : Exception(message, inner)
{
    public long Position => position;
}
