namespace PR2;

/// <summary>
/// Rule management (key 0). Rules are records of <c>rule/{name}</c> actors in shard 0, so every change is a
/// journaled, versioned message; the rule agents in every silo pick changes up within a few seconds.
/// </summary>
public interface IRulesGrain : IGrainWithIntegerKey
{
    /// <summary>Adds a rule, or replaces the one with the same name (it keeps its progress). Refuses an invalid definition with <see cref="ErrorCode.BadRule"/>.</summary>
    Task<RuleInfo> Put(string definitionJson);

    /// <summary>All rules, by name.</summary>
    Task<IReadOnlyList<RuleInfo>> List();

    /// <summary>One rule; <see cref="ErrorCode.UnknownRule"/> if there is none of that name.</summary>
    Task<RuleInfo> Get(string name);

    /// <summary>Pauses or resumes a rule.</summary>
    Task<RuleInfo> SetPaused(string name, bool paused);

    /// <summary>Removes a rule: it stops; what it wrote stays.</summary>
    Task Remove(string name);

    /// <summary>Parked entries of one rule (or all rules when null), over all shards.</summary>
    Task<IReadOnlyList<ParkedEntry>> GetParked(string? rule);

    /// <summary>Asks the rule to run again on its parked entries (e.g. after the rule was fixed); returns how many were queued.</summary>
    Task<int> RetryParked(string rule);
}
