using System.CommandLine;

namespace PR2.Client.Cli;

/// <summary><c>pr2 query &lt;shard&gt; &lt;type&gt;</c>: one page of records of a type, filtered by JSON containment, in one snapshot.</summary>
public static class QueryCommand
{
    public static Command Build(TextWriter output, TextWriter error)
    {
        var shard = new Argument<int>("shard") { Description = "Shard code" };
        var type = new Argument<string>("type") { Description = "Actor type (e.g. order)" };
        var contains = new Option<string?>("--contains") { Description = "Only records whose state contains this JSON object, e.g. '{\"customer\": \"c-7\"}'" };
        var limit = new Option<int>("--limit") { Description = "Most records per page (1..1000)", DefaultValueFactory = _ => 100 };
        var cursor = new Option<string?>("--cursor") { Description = "Continue after the page that printed this cursor" };
        var consistency = new Option<string>("--consistency") { Description = "strong (the primary, everything acknowledged) or eventual (any replica)", DefaultValueFactory = _ => "strong" };
        consistency.AcceptOnlyFromAmong("strong", "eventual");
        var command = new Command("query", "List records of a type whose state contains a JSON object, read in one snapshot") { shard, type, contains, limit, cursor, consistency };
        command.SetAction((result, cancellationToken) => Pr2Cli.RunAsync(result, output, error, cancellationToken, async client =>
        {
            var page = await client.QueryRecordsAsync(result.GetValue(shard), result.GetValue(type)!, result.GetValue(contains), result.GetValue(cursor),
                result.GetValue(limit), Enum.Parse<ReadConsistency>(result.GetValue(consistency)!, ignoreCase: true));
            if (result.GetValue(Pr2Cli.JsonOption))
            {
                Output.WriteJson(output, new { Records = page.Records.Select(Output.ToJson), page.NextCursor, page.Replica, page.Mark });
                return;
            }

            var table = new TextTable("ACTOR", "STATUS", "VERSION", "STATE");
            foreach (var record in page.Records)
            {
                table.Add(record.Actor.ActorId, Output.Status(record.Status), record.Version, Output.Shorten(record.State ?? "", 80));
            }

            output.Write(table);
            output.WriteLine($"{page.Records.Count} records from replica {page.Replica} at position {page.Mark}{(page.NextCursor is null ? "" : $"; more: --cursor {page.NextCursor}")}");
        }));
        return command;
    }
}
