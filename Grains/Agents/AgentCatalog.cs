using PR2.Grains.Storage;

namespace PR2.Grains.Agents;

/// <summary>The agents this silo knows (registered in DI) and the (agent, shard) pairs they run on.</summary>
public sealed class AgentCatalog(IEnumerable<IJournalAgent> agents, ShardRegistry shards)
{
    private readonly Dictionary<string, IJournalAgent> _agents = agents.ToDictionary(a => a.Name, StringComparer.Ordinal);

    public IReadOnlyCollection<IJournalAgent> Agents => _agents.Values;

    public IJournalAgent Get(string name) =>
        _agents.TryGetValue(name, out var agent) ? agent : throw new InvalidOperationException($"no agent named '{name}' is registered");

    /// <summary>Grain keys of every agent on every shard it follows.</summary>
    public IEnumerable<string> AllKeys() =>
        from agent in _agents.Values
        from shard in shards.ShardCodes
        where agent.Follows(shard)
        select Key(agent.Name, shard);

    /// <summary>Grain keys of the agents that follow <paramref name="shard"/>.</summary>
    public IEnumerable<string> KeysFollowing(int shard) =>
        _agents.Values.Where(a => a.Follows(shard)).Select(a => Key(a.Name, shard));

    public static string Key(string agent, int shard) => $"{agent}/{shard}";

    public static (string Agent, int Shard) ParseKey(string key)
    {
        var slash = key.LastIndexOf('/');
        return (key[..slash], int.Parse(key[(slash + 1)..], System.Globalization.CultureInfo.InvariantCulture));
    }
}
