using System.CommandLine;

namespace PR2.Client.Cli;

/// <summary><c>pr2 view &lt;shard&gt; &lt;view&gt;</c>: the documents of a view kept by rules.</summary>
public static class ViewCommand
{
    public static Command Build(TextWriter output, TextWriter error)
    {
        var shard = new Argument<int>("shard") { Description = "Shard code" };
        var view = new Argument<string>("view") { Description = "View name" };
        var prefix = new Option<string?>("--prefix") { Description = "Only keys starting with this" };
        var limit = new Option<int>("--limit") { Description = "Most documents to list (1..1000)", DefaultValueFactory = _ => 100 };
        var command = new Command("view", "Show the documents of a view kept by rules") { shard, view, prefix, limit };
        command.SetAction((result, cancellationToken) => Pr2Cli.RunAsync(result, output, error, cancellationToken, async client =>
        {
            var documents = await client.QueryViewAsync(result.GetValue(shard), result.GetValue(view)!, result.GetValue(prefix), result.GetValue(limit));
            if (result.GetValue(Pr2Cli.JsonOption))
            {
                Output.WriteJson(output, documents.Select(d => new { d.Key, Doc = System.Text.Json.Nodes.JsonNode.Parse(d.Doc), d.Rule, d.Position }));
                return;
            }

            var table = new TextTable("KEY", "DOCUMENT", "RULE", "POSITION");
            foreach (var d in documents)
            {
                table.Add(d.Key, d.Doc, d.Rule, d.Position);
            }

            output.Write(table);
        }));
        return command;
    }
}
