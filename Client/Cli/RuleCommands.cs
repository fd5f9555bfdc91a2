using System.CommandLine;
using System.Text.Json.Nodes;

namespace PR2.Client.Cli;

/// <summary><c>pr2 rules add|list|show|pause|resume|remove|parked|retry</c>: manage rules from the command line.</summary>
public static class RuleCommands
{
    public static Command Build(TextWriter output, TextWriter error)
    {
        var rules = new Command("rules", "Manage event-condition-action rules (see docs/rules.md)");
        rules.Subcommands.Add(Add(output, error));
        rules.Subcommands.Add(List(output, error));
        rules.Subcommands.Add(Show(output, error));
        rules.Subcommands.Add(Pause(output, error, paused: true));
        rules.Subcommands.Add(Pause(output, error, paused: false));
        rules.Subcommands.Add(Remove(output, error));
        rules.Subcommands.Add(Parked(output, error));
        rules.Subcommands.Add(Retry(output, error));
        return rules;
    }

    private static Command Add(TextWriter output, TextWriter error)
    {
        var file = new Argument<string>("file") { Description = "Rule definition: a .json, .yaml or .yml file ('-' reads JSON from stdin)" };
        // Said before connecting: a missing file is the user's to fix whether or not the cluster answers.
        file.Validators.Add(result =>
        {
            var path = result.Tokens.Count == 1 ? result.Tokens[0].Value : "-";
            if (path != "-" && !File.Exists(path))
            {
                result.AddError($"{path}: no such rule file");
            }
        });
        var command = new Command("add", "Add a rule, or replace the rule of the same name") { file };
        command.SetAction((result, cancellationToken) => Pr2Cli.RunAsync(result, output, error, cancellationToken, async client =>
        {
            var json = await RuleFile.ReadAsJsonAsync(result.GetValue(file)!, cancellationToken);
            var rule = await client.PutRuleAsync(json);
            Write(output, result, rule, $"rule {rule.Name} saved (version {rule.Version}{(rule.Paused ? ", paused" : "")})");
        }));
        return command;
    }

    private static Command List(TextWriter output, TextWriter error)
    {
        var command = new Command("list", "List the rules");
        command.SetAction((result, cancellationToken) => Pr2Cli.RunAsync(result, output, error, cancellationToken, async client =>
        {
            var rules = await client.GetRulesAsync();
            if (result.GetValue(Pr2Cli.JsonOption))
            {
                Output.WriteJson(output, rules.Select(Shape));
                return;
            }

            var table = new TextTable("RULE", "VERSION", "STATE", "ON", "ACTIONS");
            foreach (var rule in rules)
            {
                var definition = JsonNode.Parse(rule.Definition)!;
                table.Add(rule.Name, rule.Version, rule.Paused ? "paused" : "active", definition["on"]?.ToJsonString() ?? "", definition["do"]?.AsArray().Count ?? 0);
            }

            output.Write(table);
        }));
        return command;
    }

    private static Command Show(TextWriter output, TextWriter error)
    {
        var name = new Argument<string>("name") { Description = "Rule name" };
        var command = new Command("show", "Show a rule's definition and state") { name };
        command.SetAction((result, cancellationToken) => Pr2Cli.RunAsync(result, output, error, cancellationToken, async client =>
        {
            var rule = await client.GetRuleAsync(result.GetValue(name)!);
            if (result.GetValue(Pr2Cli.JsonOption))
            {
                Output.WriteJson(output, Shape(rule));
                return;
            }

            output.WriteLine($"rule     {rule.Name}");
            output.WriteLine($"version  {rule.Version}");
            output.WriteLine($"state    {(rule.Paused ? "paused" : "active")}");
            output.WriteLine($"started  {string.Join(", ", rule.StartAfter.OrderBy(p => p.Key).Select(p => $"shard {p.Key} after stamp {p.Value}"))}");
            output.WriteLine($"definition {Output.Pretty(rule.Definition)}");
        }));
        return command;
    }

    private static Command Pause(TextWriter output, TextWriter error, bool paused)
    {
        var name = new Argument<string>("name") { Description = "Rule name" };
        var command = new Command(paused ? "pause" : "resume", paused ? "Pause a rule where it is" : "Resume a paused rule from where it stopped") { name };
        command.SetAction((result, cancellationToken) => Pr2Cli.RunAsync(result, output, error, cancellationToken, async client =>
        {
            var rule = paused ? await client.PauseRuleAsync(result.GetValue(name)!) : await client.ResumeRuleAsync(result.GetValue(name)!);
            Write(output, result, rule, $"rule {rule.Name} {(rule.Paused ? "paused" : "active")} (version {rule.Version})");
        }));
        return command;
    }

    private static Command Remove(TextWriter output, TextWriter error)
    {
        var name = new Argument<string>("name") { Description = "Rule name" };
        var command = new Command("remove", "Remove a rule (what it wrote stays)") { name };
        command.SetAction((result, cancellationToken) => Pr2Cli.RunAsync(result, output, error, cancellationToken, async client =>
        {
            await client.RemoveRuleAsync(result.GetValue(name)!);
            output.WriteLine($"rule {result.GetValue(name)} removed");
        }));
        return command;
    }

    private static Command Parked(TextWriter output, TextWriter error)
    {
        var name = new Argument<string?>("name") { Description = "Rule name (all rules when omitted)", Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("parked", "List entries a rule parked, with the reason") { name };
        command.SetAction((result, cancellationToken) => Pr2Cli.RunAsync(result, output, error, cancellationToken, async client =>
        {
            var parked = await client.GetParkedAsync(result.GetValue(name));
            if (result.GetValue(Pr2Cli.JsonOption))
            {
                Output.WriteJson(output, parked);
                return;
            }

            var table = new TextTable("RULE", "SHARD", "POSITION", "PARKED AT", "REASON");
            foreach (var p in parked)
            {
                table.Add(p.Rule, p.Shard, p.Position, p.ParkedAt.ToString("u", System.Globalization.CultureInfo.InvariantCulture), p.Reason);
            }

            output.Write(table);
        }));
        return command;
    }

    private static Command Retry(TextWriter output, TextWriter error)
    {
        var name = new Argument<string>("name") { Description = "Rule name" };
        var command = new Command("retry", "Run a rule again on the entries it parked (e.g. after fixing it)") { name };
        command.SetAction((result, cancellationToken) => Pr2Cli.RunAsync(result, output, error, cancellationToken, async client =>
        {
            var queued = await client.RetryParkedAsync(result.GetValue(name)!);
            output.WriteLine($"{queued} parked entr{(queued == 1 ? "y" : "ies")} of rule {result.GetValue(name)} queued to run again");
        }));
        return command;
    }

    private static void Write(TextWriter output, ParseResult result, RuleInfo rule, string text)
    {
        if (result.GetValue(Pr2Cli.JsonOption))
        {
            Output.WriteJson(output, Shape(rule));
        }
        else
        {
            output.WriteLine(text);
        }
    }

    // The definition as JSON, not as a string of JSON.
    private static object Shape(RuleInfo rule) =>
        new { rule.Name, rule.Version, rule.Paused, Definition = JsonNode.Parse(rule.Definition), rule.StartAfter, rule.Generation };
}
