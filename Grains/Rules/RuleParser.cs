using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace PR2.Grains.Rules;

/// <summary>
/// Reads a rule definition (JSON; the CLI turns YAML into JSON first) and checks everything that can be
/// checked before it runs. Every problem is reported with the JSON path where it is, e.g.
/// <c>$.do[1].send.kind: must be insert, modify or cancel</c>.
/// </summary>
public static partial class RuleParser
{
    public const int MaxActions = 20;

    private static readonly string[] TopLevel = ["name", "description", "on", "when", "do", "start", "onError"];

    public static RuleDefinition Parse(string json, IReadOnlyCollection<int> knownShards)
    {
        JsonObject source;
        try
        {
            source = JsonNode.Parse(json) as JsonObject ?? throw new Pr2Exception(ErrorCode.BadRule, "$: a rule must be a JSON object");
        }
        catch (JsonException e)
        {
            throw new Pr2Exception(ErrorCode.BadRule, $"$: not valid JSON ({e.Message})");
        }

        var problems = new List<string>();
        foreach (var (name, _) in source.Where(p => !TopLevel.Contains(p.Key)))
        {
            problems.Add($"$.{name}: unknown member (known: {string.Join(", ", TopLevel)})");
        }

        var ruleName = Text(source, "name", "$.name", problems) ?? "";
        if (ruleName.Length > 0 && !NamePattern().IsMatch(ruleName))
        {
            problems.Add("$.name: must be 1-60 characters: lowercase letters, digits and '-', starting with a letter");
        }

        var paths = new List<string>();
        var (kinds, type, shards) = ParseOn(source["on"], knownShards, problems);
        RuleCondition? condition = null;
        if (source["when"] is { } when)
        {
            if (when.GetValueKind() != JsonValueKind.String)
            {
                problems.Add("$.when: must be a string (an expression such as \"[body.total] > 1000\")");
            }
            else
            {
                condition = RuleCondition.Parse(when.GetValue<string>(), out var problem);
                if (problem is not null)
                {
                    problems.Add($"$.when: {problem}");
                }
                else
                {
                    paths.AddRange(condition.Paths);
                }
            }
        }

        var actions = ParseActions(source["do"], knownShards, problems, paths);
        var start = Text(source, "start", "$.start", problems, required: false) ?? "now";
        if (start is not ("now" or "beginning"))
        {
            problems.Add("$.start: must be \"now\" (only entries after the rule was added) or \"beginning\" (the whole journal)");
        }

        var onError = Text(source, "onError", "$.onError", problems, required: false) ?? "park";
        if (onError is not ("park" or "halt"))
        {
            problems.Add("$.onError: must be \"park\" (park the entry and go on) or \"halt\" (stop at the entry)");
        }

        if (problems.Count > 0)
        {
            throw new Pr2Exception(ErrorCode.BadRule, $"rule {(ruleName.Length > 0 ? ruleName : "(unnamed)")} is invalid: {string.Join("; ", problems)}");
        }

        return new RuleDefinition(ruleName, kinds, type, shards, condition, actions, start == "beginning", onError == "halt",
            paths.Any(p => p == "record" || p.StartsWith("record.", StringComparison.Ordinal)), source);
    }

    private static (IReadOnlySet<MessageKind> Kinds, string Type, IReadOnlyList<int>? Shards) ParseOn(JsonNode? on, IReadOnlyCollection<int> knownShards, List<string> problems)
    {
        var all = new HashSet<MessageKind> { MessageKind.Insert, MessageKind.Modify, MessageKind.Cancel };
        if (on is not JsonObject obj)
        {
            problems.Add("$.on: must be an object, e.g. {\"type\": \"order\", \"kinds\": [\"insert\"]}");
            return (all, "*", null);
        }

        foreach (var (name, _) in obj.Where(p => p.Key is not ("kinds" or "type" or "shards")))
        {
            problems.Add($"$.on.{name}: unknown member (known: kinds, type, shards)");
        }

        var type = Text(obj, "type", "$.on.type", problems) ?? "*";
        if (type != "*" && !TypePattern().IsMatch(type))
        {
            problems.Add("$.on.type: must be an actor type (lowercase letters, digits, '_', '-'), optionally ending in '*', or '*' for all");
        }

        var kinds = all;
        if (obj["kinds"] is { } kindsNode)
        {
            kinds = [];
            if (kindsNode is not JsonArray array || array.Count == 0)
            {
                problems.Add("$.on.kinds: must be a non-empty array of \"insert\", \"modify\", \"cancel\"");
            }
            else
            {
                for (var i = 0; i < array.Count; i++)
                {
                    if (ParseKind(array[i]) is { } kind)
                    {
                        kinds.Add(kind);
                    }
                    else
                    {
                        problems.Add($"$.on.kinds[{i}]: must be \"insert\", \"modify\" or \"cancel\"");
                    }
                }
            }
        }

        List<int>? shards = null;
        if (obj["shards"] is { } shardsNode)
        {
            shards = [];
            if (shardsNode is not JsonArray array || array.Count == 0)
            {
                problems.Add("$.on.shards: must be a non-empty array of shard codes");
            }
            else
            {
                for (var i = 0; i < array.Count; i++)
                {
                    if (array[i] is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<int>(out var code) && knownShards.Contains(code))
                    {
                        shards.Add(code);
                    }
                    else
                    {
                        problems.Add($"$.on.shards[{i}]: {array[i]?.ToJsonString() ?? "null"} is not a configured shard (known: {string.Join(", ", knownShards.Order())})");
                    }
                }
            }
        }

        return (kinds, type, shards);
    }

    private static List<RuleAction> ParseActions(JsonNode? node, IReadOnlyCollection<int> knownShards, List<string> problems, List<string> paths)
    {
        var actions = new List<RuleAction>();
        if (node is not JsonArray array || array.Count is 0 or > MaxActions)
        {
            problems.Add($"$.do: must be an array of 1 to {MaxActions} actions, each {{\"send\": ...}} or {{\"view\": ...}}");
            return actions;
        }

        for (var i = 0; i < array.Count; i++)
        {
            var at = $"$.do[{i}]";
            if (array[i] is JsonObject { Count: 1 } action && action["send"] is JsonObject send)
            {
                actions.Add(ParseSend(i, send, $"{at}.send", knownShards, problems, paths));
            }
            else if (array[i] is JsonObject { Count: 1 } viewAction && viewAction["view"] is JsonObject view)
            {
                actions.Add(ParseView(i, view, $"{at}.view", problems, paths));
            }
            else
            {
                problems.Add($"{at}: must be an object with exactly one member, \"send\" or \"view\", holding an object");
            }
        }

        return actions;
    }

    private static SendAction ParseSend(int index, JsonObject send, string at, IReadOnlyCollection<int> knownShards, List<string> problems, List<string> paths)
    {
        Unknown(send, at, ["shard", "actor", "kind", "body"], problems);
        var shard = send["shard"]?.DeepClone();
        switch (shard)
        {
            case JsonValue v when v.GetValueKind() == JsonValueKind.Number:
                if (!v.TryGetValue<int>(out var code) || !knownShards.Contains(code))
                {
                    problems.Add($"{at}.shard: {v.ToJsonString()} is not a configured shard (known: {string.Join(", ", knownShards.Order())})");
                }

                break;
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                CheckTemplate(v.GetValue<string>(), $"{at}.shard", problems, paths);
                break;
            default:
                problems.Add($"{at}.shard: must be a shard code or a template such as \"{{entry.shard}}\"");
                break;
        }

        var actor = Text(send, "actor", $"{at}.actor", problems) ?? "";
        CheckTemplate(actor, $"{at}.actor", problems, paths);
        if (!actor.Contains('{', StringComparison.Ordinal) && actor.Length > 0 && !ActorRef.TryValidate(0, actor, out var problem))
        {
            problems.Add($"{at}.actor: {problem}");
        }

        var kind = ParseKind(send["kind"]);
        if (kind is null)
        {
            problems.Add($"{at}.kind: must be \"insert\", \"modify\" or \"cancel\"");
        }

        var body = send["body"] as JsonObject;
        if (send["body"] is not null && body is null)
        {
            problems.Add($"{at}.body: must be a JSON object (a template: strings may hold {{path}} placeholders)");
        }

        CheckTemplates(body, $"{at}.body", problems, paths);
        return new SendAction(index, shard ?? JsonValue.Create(0), actor, kind ?? MessageKind.Insert, (JsonObject?)body?.DeepClone() ?? []);
    }

    private static ViewAction ParseView(int index, JsonObject view, string at, List<string> problems, List<string> paths)
    {
        Unknown(view, at, ["name", "key", "set", "merge", "add", "delete"], problems);
        var name = Text(view, "name", $"{at}.name", problems) ?? "";
        if (name.Length > 0 && !ViewNamePattern().IsMatch(name))
        {
            problems.Add($"{at}.name: must be 1-60 characters: lowercase letters, digits and '_', starting with a letter");
        }

        var key = Text(view, "key", $"{at}.key", problems) ?? "";
        CheckTemplate(key, $"{at}.key", problems, paths);
        var modes = new[] { ("set", ViewMode.Set), ("merge", ViewMode.Merge), ("add", ViewMode.Add), ("delete", ViewMode.Delete) }
            .Where(m => view.ContainsKey(m.Item1)).ToList();
        if (modes.Count != 1)
        {
            problems.Add($"{at}: needs exactly one of \"set\", \"merge\", \"add\" (objects) or \"delete\": true");
            return new ViewAction(index, name, key, ViewMode.Set, []);
        }

        var (member, mode) = modes[0];
        if (mode == ViewMode.Delete)
        {
            if (view["delete"] is not JsonValue d || d.GetValueKind() != JsonValueKind.True)
            {
                problems.Add($"{at}.delete: must be true");
            }

            return new ViewAction(index, name, key, mode, null);
        }

        if (view[member] is not JsonObject value)
        {
            problems.Add($"{at}.{member}: must be a JSON object");
            return new ViewAction(index, name, key, mode, []);
        }

        CheckTemplates(value, $"{at}.{member}", problems, paths);
        return new ViewAction(index, name, key, mode, (JsonObject)value.DeepClone());
    }

    private static void CheckTemplates(JsonNode? node, string at, List<string> problems, List<string> paths)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var (name, value) in obj)
                {
                    CheckTemplates(value, $"{at}.{name}", problems, paths);
                }

                break;
            case JsonArray array:
                for (var i = 0; i < array.Count; i++)
                {
                    CheckTemplates(array[i], $"{at}[{i}]", problems, paths);
                }

                break;
            case JsonValue value when value.GetValueKind() == JsonValueKind.String:
                CheckTemplate(value.GetValue<string>(), at, problems, paths);
                break;
        }
    }

    private static void CheckTemplate(string template, string at, List<string> problems, List<string> paths)
    {
        try
        {
            foreach (var path in RuleTemplate.Placeholders(template))
            {
                if (!EntryContext.IsKnownRoot(path))
                {
                    problems.Add($"{at}: {{{path}}} is not a path under entry, body or record");
                }
                else if (path.StartsWith("entry.", StringComparison.Ordinal) && !EntryContext.EntryFields.Contains(path["entry.".Length..]))
                {
                    problems.Add($"{at}: {{{path}}}: entry has {string.Join(", ", EntryContext.EntryFields)}");
                }

                paths.Add(path);
            }
        }
        catch (FormatException e)
        {
            problems.Add($"{at}: {e.Message}");
        }
    }

    private static void Unknown(JsonObject obj, string at, string[] known, List<string> problems)
    {
        foreach (var (name, _) in obj.Where(p => !known.Contains(p.Key)))
        {
            problems.Add($"{at}.{name}: unknown member (known: {string.Join(", ", known)})");
        }
    }

    private static string? Text(JsonObject obj, string member, string at, List<string> problems, bool required = true)
    {
        switch (obj[member])
        {
            case JsonValue v when v.GetValueKind() == JsonValueKind.String && v.GetValue<string>().Length > 0:
                return v.GetValue<string>();
            case null when !required:
                return null;
            default:
                problems.Add($"{at}: must be a non-empty string");
                return null;
        }
    }

    private static MessageKind? ParseKind(JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.String
            ? v.GetValue<string>() switch
            {
                "insert" => MessageKind.Insert,
                "modify" => MessageKind.Modify,
                "cancel" => MessageKind.Cancel,
                _ => null,
            }
            : null;

    [GeneratedRegex("^[a-z][a-z0-9-]{0,59}$")]
    private static partial Regex NamePattern();

    [GeneratedRegex("^[a-z][a-z0-9_-]*\\*?$")]
    private static partial Regex TypePattern();

    [GeneratedRegex("^[a-z][a-z0-9_]{0,59}$")]
    private static partial Regex ViewNamePattern();
}
