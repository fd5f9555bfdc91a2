using System.Text.RegularExpressions;

namespace PR2.Grains.Configuration;

/// <summary>What a shard added at runtime (<see cref="NewShard"/>) must be, checked before anything is created.</summary>
public static partial class NewShardRules
{
    public const int MaxReplicas = 16;

    /// <summary>Where the keys of added shards' connections live, apart from the silo's own settings (membership, configured shards).</summary>
    public const string KeyPrefix = "Pr2:Connections:";

    /// <summary>Why the shard cannot be added, or null when it can.</summary>
    public static string? Problem(NewShard shard)
    {
        if (shard.Shard < 1)
        {
            return $"a shard added at runtime has a code of 1 or more (0 is the control shard), got {shard.Shard}";
        }

        if (shard.Connections is not { Count: >= 1 and <= MaxReplicas } connections)
        {
            return $"a shard has 1 to {MaxReplicas} replicas, each named by a configuration key";
        }

        for (var i = 0; i < connections.Count; i++)
        {
            if (KeyProblem(connections[i]) is { } problem)
            {
                return $"replica {i}: {problem}";
            }
        }

        if (connections.Distinct(StringComparer.OrdinalIgnoreCase).Count() != connections.Count)
        {
            return "each replica needs its own configuration key";
        }

        if (shard.AckPolicy is not null && !Enum.GetNames<AckPolicy>().Contains(shard.AckPolicy, StringComparer.OrdinalIgnoreCase))
        {
            return $"ack policy '{shard.AckPolicy}' is not one of Primary, Quorum, All";
        }

        return ShardMetadataRules.Problem(shard.Name, shard.Owner, shard.Labels?.ToDictionary(l => l.Key, l => (string?)l.Value));
    }

    /// <summary>Why <paramref name="key"/> cannot name a replica's connection, or null when it can. Never echoes it: it may be a connection string with its password.</summary>
    public static string? KeyProblem(string? key) => key is not null && ConnectionKey().IsMatch(key) ? null
        : $"name its connection by a configuration key under {KeyPrefix} (letters, digits, ':', '.', '_' or '-', e.g. {KeyPrefix}acme-a), never by the connection string itself";

    [GeneratedRegex("^Pr2:Connections:[A-Za-z0-9:._-]{1,200}$")]
    private static partial Regex ConnectionKey();
}
