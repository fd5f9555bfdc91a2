using System.CommandLine;
using System.Globalization;

namespace PR2.Client.Cli;

/// <summary><c>pr2 replicas promote</c>: planned changes to a shard's replicas.</summary>
public static class ReplicaCommands
{
    public static Command Build(TextWriter output, TextWriter error)
    {
        var replicas = new Command("replicas", "Change a shard's replicas: add one, remove one, move its primary");
        replicas.Subcommands.Add(Add(output, error));
        replicas.Subcommands.Add(Remove(output, error));
        replicas.Subcommands.Add(Promote(output, error));
        return replicas;
    }

    private static Command Add(TextWriter output, TextWriter error)
    {
        var shard = new Argument<int>("shard") { Description = "Shard code (not 0)" };
        var connection = new Argument<string>("connection")
        {
            Description = "Configuration key of the new replica's connection string, under Pr2:Connections: (e.g. Pr2:Connections:acme-c), set on every silo; never the string itself",
        };
        var command = new Command("add",
            "Add a replica to a running shard: its database is created, anti-entropy fills it while writes go on, and once caught up it serves reads and counts toward the ack policy. Interrupted, it goes on joining: run it again to follow")
        {
            shard, connection,
        };
        command.SetAction((result, cancellationToken) => Pr2Cli.RunAsync(result, output, error, cancellationToken, async client =>
        {
            var code = result.GetValue(shard);
            var key = result.GetValue(connection)!;
            var started = System.Diagnostics.Stopwatch.StartNew();
            var bar = ProgressBar.For(error, $"replica {key} of shard {code}", p => (p.Rows, p.TotalRows, "entries"));
            var entry = await client.AddReplicaAsync(code, key, bar, cancellationToken: cancellationToken);
            bar.Done();
            var index = entry.Connections!.ToList().FindIndex(k => string.Equals(k, key, StringComparison.OrdinalIgnoreCase));
            if (result.GetValue(Pr2Cli.JsonOption))
            {
                Output.WriteJson(output, new { shard = entry, replica = index, seconds = Math.Round(started.Elapsed.TotalSeconds, 3) });
                return;
            }

            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"shard {code}: replica {index} ({entry.Replicas[index]}) serves: {entry.Replicas.Count} replicas, ack policy {entry.AckPolicy} ({started.Elapsed.TotalSeconds:0.00} s)"));
        }));
        return command;
    }

    private static Command Remove(TextWriter output, TextWriter error)
    {
        var shard = new Argument<int>("shard") { Description = "Shard code (not 0)" };
        var replica = new Argument<int>("replica") { Description = "Index of the replica to remove (as pr2 shards describe lists them); not the primary" };
        var command = new Command("remove",
            "Remove a replica from a shard: the other members take everything first, writes wait for the switch instead of failing, and from then nothing reads, fills or counts it (its database may then be dropped)")
        {
            shard, replica,
        };
        command.SetAction((result, cancellationToken) => Pr2Cli.RunAsync(result, output, error, cancellationToken, async client =>
        {
            var code = result.GetValue(shard);
            var index = result.GetValue(replica);
            var started = System.Diagnostics.Stopwatch.StartNew();
            var entry = await client.RemoveReplicaAsync(code, index, cancellationToken);
            if (result.GetValue(Pr2Cli.JsonOption))
            {
                Output.WriteJson(output, new { shard = entry, replica = index, seconds = Math.Round(started.Elapsed.TotalSeconds, 3) });
                return;
            }

            var members = entry.Replicas.Count - (entry.Removed?.Count ?? 0) - (entry.Joining?.Count ?? 0);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"shard {code}: replica {index} ({entry.Replicas[index]}) removed: {members} members left, ack policy {entry.AckPolicy} ({started.Elapsed.TotalSeconds:0.00} s)"));
        }));
        return command;
    }

    private static Command Promote(TextWriter output, TextWriter error)
    {
        var shard = new Argument<int>("shard") { Description = "Shard code" };
        var replica = new Argument<int>("replica") { Description = "Index of the replica to make the primary (as pr2 shards describe lists them)" };
        var command = new Command("promote",
            "Move a shard's primary to another replica (e.g. before maintenance of the primary's server): writes wait for the switch instead of failing, nothing acknowledged is lost")
        {
            shard, replica,
        };
        command.SetAction((result, cancellationToken) => Pr2Cli.RunAsync(result, output, error, cancellationToken, async client =>
        {
            var code = result.GetValue(shard);
            var started = System.Diagnostics.Stopwatch.StartNew();
            var primary = await client.MovePrimaryAsync(code, result.GetValue(replica), cancellationToken);
            if (result.GetValue(Pr2Cli.JsonOption))
            {
                Output.WriteJson(output, new { shard = code, primary, seconds = Math.Round(started.Elapsed.TotalSeconds, 3) });
                return;
            }

            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"shard {code}: primary is replica {primary} ({started.Elapsed.TotalSeconds:0.00} s)"));
        }));
        return command;
    }
}
