using PR2.Grains.Rules;
using PR2.Grains.Storage;

namespace PR2.Grains.Agents;

/// <summary>The agents this silo knows (registered in DI, plus one per rule) and the (agent, shard) pairs they run on.</summary>
public sealed class AgentCatalog(IEnumerable<IJournalAgent> agents, IEnumerable<IRule> codeRules, RuleSet rules, ShardRegistry shards)
{
    // Agents registered in DI, and C# rules (which, like the built-in agents, change only with the code).
    private readonly Dictionary<string, IJournalAgent> _builtIn =
        agents.Concat(codeRules.Select(rule => (IJournalAgent)new CodeRuleAgent(rule))).ToDictionary(a => a.Name, StringComparer.Ordinal);

    public IReadOnlyCollection<IJournalAgent> Agents => [.. _builtIn.Values, .. rules.Agents];

    /// <summary>The agent of that name, or null (a rule removed, or not yet known to this silo).</summary>
    public IJournalAgent? Find(string name) => _builtIn.GetValueOrDefault(name) ?? rules.Find(name);

    public IJournalAgent Get(string name) =>
        Find(name) ?? throw new InvalidOperationException($"no agent named '{name}' is registered");

    /// <summary>Grain keys of every agent on every shard it follows: per-replica agents once per replica (not removed ones), the others once.</summary>
    public IEnumerable<string> AllKeys() =>
        from set in shards.Sets
        from agent in Agents
        where agent.Follows(set.Shard)
        from replica in agent.PerReplica ? set.Live : [0]
        select Key(agent.Name, set.Shard, replica);

    /// <summary>
    /// Grain keys of the agents to wake when <paramref name="shard"/>'s journal grew on replica <paramref name="replica"/>:
    /// its per-replica agents, and the others when that replica is the primary.
    /// </summary>
    public IEnumerable<string> KeysFollowing(int shard, int replica) =>
        Agents
            .Where(a => a.Follows(shard) && (a.PerReplica || replica == shards.Get(shard).PrimaryIndex))
            .Select(a => Key(a.Name, shard, a.PerReplica ? replica : 0));

    /// <summary><c>agent/shard@replica</c>, e.g. <c>records/1@0</c>.</summary>
    public static string Key(string agent, int shard, int replica = 0) => $"{agent}/{shard}@{replica}";

    public static (string Agent, int Shard, int Replica) ParseKey(string key)
    {
        var slash = key.LastIndexOf('/');
        var at = key.LastIndexOf('@');
        return (key[..slash],
            int.Parse(key[(slash + 1)..at], System.Globalization.CultureInfo.InvariantCulture),
            int.Parse(key[(at + 1)..], System.Globalization.CultureInfo.InvariantCulture));
    }
}
