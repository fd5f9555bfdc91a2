using Microsoft.Extensions.Logging;
using PR2.Grains.Storage;

namespace PR2.Grains.Rules;

/// <summary>
/// The rules this silo runs, as agents, from the directory: refreshed by the agent supervisor every few
/// seconds and at once on the silo where a rule is changed. A definition that no longer parses (say, it names a shard
/// taken out of the configuration, not removed through the directory) is left out and logged rather than run half-understood.
/// </summary>
public sealed class RuleSet(ShardRegistry shards, ILogger<RuleSet> logger)
{
    private volatile IReadOnlyDictionary<string, RuleAgent> _agents = new Dictionary<string, RuleAgent>(StringComparer.Ordinal);
    private volatile IReadOnlyDictionary<string, string> _notLoaded = new Dictionary<string, string>(StringComparer.Ordinal);

    public IReadOnlyCollection<RuleAgent> Agents => (IReadOnlyCollection<RuleAgent>)_agents.Values;

    public RuleAgent? Find(string agentName) => _agents.GetValueOrDefault(agentName);

    /// <summary>The rules shard 0 lists that this silo could not load at its last refresh, with why.</summary>
    public IReadOnlyDictionary<string, string> NotLoaded => _notLoaded;

    public async Task RefreshAsync(IGrainFactory grains) => Replace(await grains.GetGrain<IRulesGrain>(0).List());

    /// <summary>Takes the given rules as the whole set.</summary>
    public void Replace(IEnumerable<RuleInfo> rules)
    {
        var current = _agents;
        var next = new Dictionary<string, RuleAgent>(StringComparer.Ordinal);
        var notLoaded = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var info in rules)
        {
            var name = RuleAgent.Prefix + info.Name;
            if (current.TryGetValue(name, out var known) && known.Info.Version == info.Version)
            {
                next[name] = known;
                continue;
            }

            try
            {
                next[name] = new RuleAgent(RuleParser.Parse(info.Definition, shards.NamedCodes), info);
            }
            catch (Pr2Exception e)
            {
                Log.RuleNotLoaded(logger, info.Name, e.Message);
                notLoaded[info.Name] = e.Message;
            }
        }

        _agents = next;
        _notLoaded = notLoaded;
    }

    /// <summary>Adds or replaces one rule (the silo where it was changed does not wait for the next refresh).</summary>
    public void Put(RuleAgent agent) =>
        _agents = new Dictionary<string, RuleAgent>(_agents, StringComparer.Ordinal) { [agent.Name] = agent };

    public void Remove(string ruleName)
    {
        var next = new Dictionary<string, RuleAgent>(_agents, StringComparer.Ordinal);
        next.Remove(RuleAgent.Prefix + ruleName);
        _agents = next;
    }
}
