using System.Globalization;
using Microsoft.Extensions.Options;
using Npgsql;

namespace PR2.Grains.Configuration;

/// <summary>
/// Refuses a topology the silo cannot run: every message names the configuration key at fault.
/// Connection strings are never echoed (they may hold passwords).
/// </summary>
public sealed class TopologyOptionsValidator : IValidateOptions<TopologyOptions>
{
    public ValidateOptionsResult Validate(string? name, TopologyOptions options)
    {
        var failures = new List<string>();
        var prefix = $"{TopologyOptions.SectionName}:{nameof(TopologyOptions.Shards)}";
        if (options.Shards.Count == 0)
        {
            failures.Add($"{prefix}: no shards configured; shard 0 (the control shard) is required");
        }

        foreach (var (key, shard) in options.Shards)
        {
            if (!int.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out _))
            {
                failures.Add($"{prefix}:{key}: a shard code must be an integer >= 0");
                continue;
            }

            var replicasKey = $"{prefix}:{key}:{nameof(ShardTopology.Replicas)}";
            if (shard.Replicas.Count == 0)
            {
                failures.Add($"{replicasKey}: shard {key} has no replicas; give at least one connection string");
            }

            if (!Enum.IsDefined(shard.AckPolicy))
            {
                failures.Add($"{prefix}:{key}:{nameof(ShardTopology.AckPolicy)}: must be Primary, Quorum or All");
            }

            if (ShardMetadataRules.Problem(shard.Name, shard.Owner, shard.Labels.ToDictionary(p => p.Key, p => (string?)p.Value)) is { } metadata)
            {
                failures.Add($"{prefix}:{key}: {metadata}");
            }

            for (var i = 0; i < shard.Replicas.Count; i++)
            {
                if (DescribeConnectionStringProblem(shard.Replicas[i]) is { } problem)
                {
                    failures.Add($"{replicasKey}:{i}: {problem}");
                }
            }
        }

        if (options.Shards.Count > 0 && !options.Shards.ContainsKey("0"))
        {
            failures.Add($"{prefix}:0: the control shard 0 is missing");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static string? DescribeConnectionStringProblem(string connectionString)
    {
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            return "connection string is empty";
        }

        try
        {
            var builder = new NpgsqlConnectionStringBuilder(connectionString);
            if (string.IsNullOrEmpty(builder.Host))
            {
                return "connection string has no Host";
            }

            return string.IsNullOrEmpty(builder.Database) ? "connection string has no Database" : null;
        }
        catch (ArgumentException e)
        {
            // The message names the offending keyword, never its value.
            return $"connection string is not valid: {e.Message}";
        }
    }
}
