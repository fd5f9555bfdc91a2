using System.CommandLine;
using System.Globalization;

namespace PR2.Client.Cli;

/// <summary><c>pr2 projections list|status|rebuild|cancel</c>: what folds a shard's journal, and rebuilding the records view or a rule's views.</summary>
public static class ProjectionCommands
{
    public static Command Build(TextWriter output, TextWriter error)
    {
        var projections = new Command("projections", "A shard's projections (the records view, the object directory, rules' views): their marks, and rebuilding the records view or a rule's views");
        projections.Subcommands.Add(List(output, error));
        projections.Subcommands.Add(Status(output, error));
        projections.Subcommands.Add(Rebuild(output, error));
        projections.Subcommands.Add(Cancel(output, error));
        return projections;
    }

    private static Command List(TextWriter output, TextWriter error)
    {
        var shard = new Argument<int>("shard") { Description = "Shard code" };
        var command = new Command("list", "List the projections following a shard, with each replica's mark and lag") { shard };
        command.SetAction((result, cancellationToken) => Pr2Cli.RunAsync(result, output, error, cancellationToken, async client =>
        {
            var list = await client.ListProjectionsAsync(result.GetValue(shard), cancellationToken);
            if (result.GetValue(Pr2Cli.JsonOption))
            {
                Output.WriteJson(output, list);
                return;
            }

            var table = new TextTable("PROJECTION", "REBUILDABLE", "REPLICA", "STATE", "MARK", "LAG", "LAST REBUILD");
            foreach (var projection in list)
            {
                foreach (var replica in projection.Replicas)
                {
                    table.Add(projection.Projection, projection.Rebuildable ? "yes" : "no", replica.Replica, replica.State,
                        replica.Mark, replica.Head >= 0 ? Math.Max(0, replica.Head - replica.Mark) : -1, LastRebuild(replica));
                }
            }

            output.Write(table);
        }));
        return command;
    }

    private static Command Status(TextWriter output, TextWriter error)
    {
        var shard = new Argument<int>("shard") { Description = "Shard code" };
        var name = new Argument<string>("projection") { Description = "Projection name (records, object-directory, rule-<name>)" };
        var command = new Command("status", "Where a projection stands on each replica, and its last rebuild") { shard, name };
        command.SetAction((result, cancellationToken) => Pr2Cli.RunAsync(result, output, error, cancellationToken, async client =>
        {
            var status = await client.GetProjectionAsync(result.GetValue(shard), result.GetValue(name)!, cancellationToken);
            if (result.GetValue(Pr2Cli.JsonOption))
            {
                Output.WriteJson(output, status);
                return;
            }

            Write(output, status);
        }));
        return command;
    }

    private static Command Rebuild(TextWriter output, TextWriter error)
    {
        var shard = new Argument<int>("shard") { Description = "Shard code" };
        var name = new Argument<string>("projection") { Description = "Projection to rebuild: records, rule-<name> for a rule's views, or object-directory (shard 0 only)" };
        var restart = new Option<bool>("--restart") { Description = "Start a rebuild in progress over (e.g. after a fix to the fold was deployed during it)" };
        var command = new Command("rebuild",
            "Rebuild a projection from the journal while writes and reads go on, then swap it in atomically on each replica (blue/green). Interrupted, the rebuild goes on: run it again to follow it")
        {
            shard, name, restart,
        };
        command.SetAction((result, cancellationToken) => Pr2Cli.RunAsync(result, output, error, cancellationToken, async client =>
        {
            var code = result.GetValue(shard);
            var projection = result.GetValue(name)!;
            var started = System.Diagnostics.Stopwatch.StartNew();
            var bar = ProgressBar.For(error, $"{projection} of shard {code}", p => (p.Rows, p.TotalRows, "entries"));
            var status = await client.RebuildProjectionAsync(code, projection, bar, restart: result.GetValue(restart), cancellationToken: cancellationToken);
            bar.Done();
            if (result.GetValue(Pr2Cli.JsonOption))
            {
                Output.WriteJson(output, new { status, seconds = Math.Round(started.Elapsed.TotalSeconds, 3) });
                return;
            }

            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"shard {code}: {projection} rebuilt and swapped in on {status.Replicas.Count} replicas ({started.Elapsed.TotalSeconds:0.00} s)"));
            Write(output, status);
        }));
        return command;
    }

    private static Command Cancel(TextWriter output, TextWriter error)
    {
        var shard = new Argument<int>("shard") { Description = "Shard code" };
        var name = new Argument<string>("projection") { Description = "Projection whose rebuild to cancel: records, rule-<name> or object-directory (shard 0)" };
        var command = new Command("cancel",
            "Cancel a rebuild in progress on every replica: each drops its shadow and keeps its live view (a replica that already swapped keeps the rebuilt one)")
        {
            shard, name,
        };
        command.SetAction((result, cancellationToken) => Pr2Cli.RunAsync(result, output, error, cancellationToken, async client =>
        {
            var code = result.GetValue(shard);
            var projection = result.GetValue(name)!;
            var status = await client.CancelProjectionRebuildAsync(code, projection, cancellationToken);
            if (result.GetValue(Pr2Cli.JsonOption))
            {
                Output.WriteJson(output, status);
                return;
            }

            var canceled = status.Replicas.Where(r => r.State == "canceled").Select(r => r.Replica).ToList();
            output.WriteLine(canceled.Count == 0
                ? $"shard {code}: no rebuild of {projection} was in progress"
                : $"shard {code}: the rebuild of {projection} is canceled on replica {string.Join(", ", canceled)}; the live view was kept");
            Write(output, status);
        }));
        return command;
    }

    private static void Write(TextWriter output, ProjectionStatus status)
    {
        var table = new TextTable("REPLICA", "STATE", "FOLDED", "HEAD", "MARK", "LAST REBUILD", "ERROR");
        foreach (var replica in status.Replicas)
        {
            table.Add(replica.Replica, replica.State, replica.Folded, replica.Head, replica.Mark, LastRebuild(replica), replica.Error ?? "");
        }

        output.Write(table);
    }

    private static string LastRebuild(ProjectionReplicaStatus replica) => replica switch
    {
        { Generation: 0 } => "never",
        { State: "building", StartedAt: { } started } => string.Create(CultureInfo.InvariantCulture, $"#{replica.Generation} building since {started:u}"),
        { State: "canceled", StartedAt: { } started } => string.Create(CultureInfo.InvariantCulture, $"#{replica.Generation} canceled (started {started:u})"),
        { SwappedAt: { } swapped } => string.Create(CultureInfo.InvariantCulture, $"#{replica.Generation} swapped in {swapped:u} at {replica.SwappedPosition}"),
        _ => string.Create(CultureInfo.InvariantCulture, $"#{replica.Generation}"),
    };
}
