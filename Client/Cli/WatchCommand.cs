using System.CommandLine;

namespace PR2.Client.Cli;

/// <summary>
/// <c>pr2 watch &lt;shard&gt;</c>: prints record changes as they happen, until Ctrl-C (or <c>--count</c> changes); with
/// <c>--json</c>, one JSON object per line.
/// </summary>
public static class WatchCommand
{
    public static Command Build(TextWriter output, TextWriter error)
    {
        var shard = new Argument<int>("shard") { Description = "Shard code" };
        var type = new Option<string?>("--type") { Description = "Only records of this actor type" };
        var actor = new Option<string?>("--actor") { Description = "Only this actor (type/key)" };
        var after = new Option<string?>("--after") { Description = "Start after this place: a change's resume token (from --json; valid after a fail-over) or a journal position on the current primary (default: from now on)" };
        after.Validators.Add(result =>
        {
            var text = result.Tokens.Count == 1 ? result.Tokens[0].Value : null;
            try
            {
                _ = text is null ? null : WatchPosition.Parse(text);
            }
            catch (FormatException)
            {
                result.AddError($"--after {text}: neither a resume token nor a journal position");
            }
        });
        var count = new Option<int?>("--count") { Description = "Stop after this many changes" };
        var command = new Command("watch", "Print record changes of a shard as they happen, in journal order") { shard, type, actor, after, count };
        command.SetAction((result, cancellationToken) => Pr2Cli.RunAsync(result, output, error, cancellationToken, async client =>
        {
            var seen = 0;
            var json = result.GetValue(Pr2Cli.JsonOption);
            var from = result.GetValue(after) is { } text ? WatchPosition.Parse(text) : null;
            await foreach (var change in client.WatchAsync(result.GetValue(shard), from, result.GetValue(type), result.GetValue(actor), cancellationToken: cancellationToken))
            {
                if (json)
                {
                    Output.WriteJsonLine(output, new { change.Position, Stamp = change.Stamp.ToString(), Kind = Output.Kind(change.Kind), Record = Output.ToJson(change.Record), Resume = change.Resume?.ToString() });
                }
                else
                {
                    output.WriteLine($"{change.Position} {change.Stamp} {Output.Kind(change.Kind)} {change.Record.Actor.ActorId} v{change.Record.Version} {Output.Shorten(change.Record.State ?? "", 100)}");
                }

                await output.FlushAsync(cancellationToken);
                if (++seen == result.GetValue(count))
                {
                    return;
                }
            }
        }));
        return command;
    }
}
