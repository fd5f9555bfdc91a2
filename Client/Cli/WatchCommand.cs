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
        var after = new Option<long?>("--after") { Description = "Start after this journal position (default: from now on)" };
        var count = new Option<int?>("--count") { Description = "Stop after this many changes" };
        var command = new Command("watch", "Print record changes of a shard as they happen, in journal order") { shard, type, actor, after, count };
        command.SetAction((result, cancellationToken) => Pr2Cli.RunAsync(result, output, error, cancellationToken, async client =>
        {
            var seen = 0;
            var json = result.GetValue(Pr2Cli.JsonOption);
            await foreach (var change in client.WatchAsync(result.GetValue(shard), result.GetValue(type), result.GetValue(actor), result.GetValue(after), cancellationToken: cancellationToken))
            {
                if (json)
                {
                    Output.WriteJsonLine(output, new { change.Position, Stamp = change.Stamp.ToString(), Kind = Output.Kind(change.Kind), Record = Output.ToJson(change.Record) });
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
