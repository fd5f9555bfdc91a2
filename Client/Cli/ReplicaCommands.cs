using System.CommandLine;
using System.Globalization;

namespace PR2.Client.Cli;

/// <summary><c>pr2 replicas promote</c>: planned changes to a shard's replicas.</summary>
public static class ReplicaCommands
{
    public static Command Build(TextWriter output, TextWriter error)
    {
        var replicas = new Command("replicas", "Change a shard's replicas: move its primary");
        replicas.Subcommands.Add(Promote(output, error));
        return replicas;
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
