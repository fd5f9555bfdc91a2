using System.CommandLine;
using System.Globalization;

namespace PR2.Client.Cli;

/// <summary><c>pr2 shards list|describe|set|add</c>: the shard map as the directory (shard 0) records it, what each shard is, and new shards.</summary>
public static class ShardCommands
{
    public static Command Build(TextWriter output, TextWriter error)
    {
        var shards = new Command("shards", "Show the shards the directory records and what each is (name, owner, labels)");
        shards.Subcommands.Add(List(output, error));
        shards.Subcommands.Add(Describe(output, error));
        shards.Subcommands.Add(Set(output, error));
        shards.Subcommands.Add(Add(output, error));
        shards.Subcommands.Add(Remove(output, error));
        return shards;
    }

    private static Command List(TextWriter output, TextWriter error)
    {
        var command = new Command("list", "List the shards with their names, owners, labels, primary and replicas");
        command.SetAction((result, cancellationToken) => Pr2Cli.RunAsync(result, output, error, cancellationToken, async client =>
        {
            var shards = await client.GetShardsAsync(cancellationToken);
            if (result.GetValue(Pr2Cli.JsonOption))
            {
                Output.WriteJson(output, shards);
                return;
            }

            var table = new TextTable("SHARD", "NAME", "OWNER", "LABELS", "PRIMARY", "REPLICAS");
            foreach (var s in shards)
            {
                table.Add(s.Shard, s.Name ?? "-", s.Owner ?? "-", Labels(s), s.Primary, s.Replicas.Count);
            }

            output.Write(table);
        }));
        return command;
    }

    private static Command Describe(TextWriter output, TextWriter error)
    {
        var shard = new Argument<int>("shard") { Description = "Shard code" };
        var command = new Command("describe", "Show one shard: what it is, its replicas (state, head, how far behind) and its agents' lag") { shard };
        command.SetAction((result, cancellationToken) => Pr2Cli.RunAsync(result, output, error, cancellationToken, async client =>
        {
            var code = result.GetValue(shard);
            var entry = (await client.GetShardsAsync(cancellationToken)).SingleOrDefault(s => s.Shard == code)
                ?? throw new Pr2Exception(ErrorCode.UnknownShard, $"shard {code} is not in the directory");
            var status = (await client.GetStatusAsync(cancellationToken)).Shards.SingleOrDefault(s => s.Shard == code);
            if (result.GetValue(Pr2Cli.JsonOption))
            {
                Output.WriteJson(output, new { shard = entry, status });
                return;
            }

            output.WriteLine($"shard {entry.Shard}: {entry.Name ?? "(no name)"}");
            output.WriteLine($"owner    {entry.Owner ?? "-"}");
            output.WriteLine($"labels   {Labels(entry)}");
            output.WriteLine($"status   {entry.Status}, primary replica {entry.Primary}, directory record version {entry.Version}");
            if (entry.Removal is { } removal)
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"removal  {removal.State} since {removal.Since:u}{(removal.SealedHeads is { } heads ? $", sealed at {string.Join(", ", heads.Select(h => $"replica {h.Key} head {h.Value}"))}" : "")}"));
            }
            if (status is not null)
            {
                output.WriteLine($"journal  head {status.Head}, clock {status.Clock}");
            }

            output.WriteLine();
            var replicas = new TextTable("REPLICA", "ENDPOINT", "STATE", "PRIMARY", "HEAD", "BEHIND");
            for (var i = 0; i < entry.Replicas.Count; i++)
            {
                var replica = status?.Replicas.SingleOrDefault(r => r.Index == i);
                var state = i < entry.ReplicaStates.Count ? entry.ReplicaStates[i] : "-";
                replicas.Add(i, entry.Replicas[i], entry.Removed?.Contains(i) == true ? "removed" : entry.Joining?.Contains(i) == true ? $"joining, {state}" : state, replica?.Primary == true ? "yes" : "",
                    replica is { Reachable: true } ? replica.Head : "-", replica is { Reachable: true } ? replica.Behind : "-");
            }

            output.Write(replicas);
            if (status is { Agents.Count: > 0 })
            {
                output.WriteLine();
                var agents = new TextTable("AGENT", "MARK", "LAG");
                foreach (var agent in status.Agents)
                {
                    agents.Add(agent.Agent, agent.Mark, agent.Lag);
                }

                output.Write(agents);
            }
        }));
        return command;
    }

    private static Command Set(TextWriter output, TextWriter error)
    {
        var shard = new Argument<int>("shard") { Description = "Shard code" };
        var name = new Option<string?>("--name") { Description = "What the shard is, e.g. the company it holds ('' removes it)" };
        var owner = new Option<string?>("--owner") { Description = "Who answers for it ('' removes it)" };
        var label = new Option<string[]>("--label") { Description = "key=value sets a label, key- removes it (repeatable)", AllowMultipleArgumentsPerToken = false };
        label.Validators.Add(result =>
        {
            foreach (var token in result.Tokens.Select(t => t.Value).Where(t => !t.Contains('=', StringComparison.Ordinal) && !t.EndsWith('-')))
            {
                result.AddError($"--label {token}: give key=value to set a label or key- to remove it");
            }
        });
        var command = new Command("set", "Record a shard's name, owner or labels in the directory (one journaled change)") { shard, name, owner, label };
        command.SetAction((result, cancellationToken) => Pr2Cli.RunAsync(result, output, error, cancellationToken, async client =>
        {
            var labels = new Dictionary<string, string?>(StringComparer.Ordinal);
            foreach (var token in result.GetValue(label) ?? [])
            {
                var at = token.IndexOf('=', StringComparison.Ordinal);
                if (at < 0)
                {
                    labels[token[..^1]] = null;
                }
                else
                {
                    labels[token[..at]] = token[(at + 1)..];
                }
            }

            var entry = await client.SetShardMetadataAsync(result.GetValue(shard), result.GetValue(name), result.GetValue(owner), labels, cancellationToken);
            if (result.GetValue(Pr2Cli.JsonOption))
            {
                Output.WriteJson(output, entry);
                return;
            }

            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"shard {entry.Shard}: name {entry.Name ?? "-"}, owner {entry.Owner ?? "-"}, labels {Labels(entry)} (directory record version {entry.Version})"));
        }));
        return command;
    }

    private static Command Add(TextWriter output, TextWriter error)
    {
        var shard = new Argument<int>("shard") { Description = "Code of the new shard (1 or more, not in use)" };
        var connection = new Option<string[]>("--connection")
        {
            Description = "Per replica, the configuration key that holds its connection string on every silo, e.g. Pr2:Connections:acme-a (repeatable, in replica order)",
            Required = true,
            AllowMultipleArgumentsPerToken = false,
        };
        var ackPolicy = new Option<string?>("--ack-policy") { Description = "Primary (default), Quorum or All" };
        var name = new Option<string?>("--name") { Description = "What the shard is, e.g. the company it holds" };
        var owner = new Option<string?>("--owner") { Description = "Who answers for it" };
        var label = new Option<string[]>("--label") { Description = "key=value (repeatable)", AllowMultipleArgumentsPerToken = false };
        label.Validators.Add(result =>
        {
            foreach (var token in result.Tokens.Select(t => t.Value).Where(t => !t.Contains('=', StringComparison.Ordinal)))
            {
                result.AddError($"--label {token}: give key=value");
            }
        });
        var command = new Command("add", "Add a shard to the running cluster: its databases are created if missing, the schema applied, and every silo takes it up from the directory")
        {
            shard, connection, ackPolicy, name, owner, label,
        };
        command.SetAction((result, cancellationToken) => Pr2Cli.RunAsync(result, output, error, cancellationToken, async client =>
        {
            var labels = (result.GetValue(label) ?? []).Select(t => t.Split('=', 2)).ToDictionary(p => p[0], p => p[1], StringComparer.Ordinal);
            var entry = await client.AddShardAsync(new NewShard(result.GetValue(shard), result.GetValue(connection) ?? [], result.GetValue(ackPolicy),
                result.GetValue(name), result.GetValue(owner), labels), cancellationToken);
            if (result.GetValue(Pr2Cli.JsonOption))
            {
                Output.WriteJson(output, entry);
                return;
            }

            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"shard {entry.Shard} added: {entry.Replicas.Count} replica(s) ({string.Join(", ", entry.Replicas)}), ack policy {entry.AckPolicy ?? "Primary"}, name {entry.Name ?? "-"}"));
        }));
        return command;
    }

    private static Command Remove(TextWriter output, TextWriter error)
    {
        var shard = new Argument<int>("shard") { Description = "Code of the shard to remove (not 0)" };
        var noWait = new Option<bool>("--no-wait") { Description = "Start the removal (or show where it stands) and return; it goes on by itself" };
        var command = new Command("remove",
            "Remove a shard: its replicas are sealed (acknowledged writes stay, new ones are refused), agents and rules finish, every silo drops it; then its databases may be dropped")
        {
            shard, noWait,
        };
        command.SetAction((result, cancellationToken) => Pr2Cli.RunAsync(result, output, error, cancellationToken, async client =>
        {
            var json = result.GetValue(Pr2Cli.JsonOption);
            string? shown = null;
            var progress = new Progress<ShardRemovalStatus>(status =>
            {
                var line = $"shard {status.Shard}: {status.Removal.State}{(status.WaitingFor.Count > 0 ? $", waiting for {string.Join("; ", status.WaitingFor)}" : "")}";
                if (!json && line != shown)
                {
                    shown = line;
                    error.WriteLine(line);
                }
            });
            var status = await client.RemoveShardAsync(result.GetValue(shard), wait: !result.GetValue(noWait), progress, cancellationToken: cancellationToken);
            if (json)
            {
                Output.WriteJson(output, status);
                return;
            }

            output.WriteLine(status.Removal.State == ShardRemoval.Removed
                ? $"shard {status.Shard} removed: no silo uses it any more; its databases may be dropped"
                : $"shard {status.Shard}: removal {status.Removal.State}{(status.WaitingFor.Count > 0 ? $", waiting for {string.Join("; ", status.WaitingFor)}" : "")} (it goes on; run the command again to follow it)");
        }));
        return command;
    }

    private static string Labels(ShardEntry shard) =>
        shard.Labels is { Count: > 0 } labels ? string.Join(",", labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}")) : "-";
}
