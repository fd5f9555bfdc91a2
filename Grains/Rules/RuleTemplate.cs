using System.Text;
using System.Text.Json.Nodes;

namespace PR2.Grains.Rules;

/// <summary>
/// Fills a template from an entry: in every string, <c>{path}</c> is replaced by the value at that path
/// (see <see cref="EntryContext"/>); a string that is exactly one placeholder becomes that value itself, so
/// <c>"{body.total}"</c> stays a number. <c>{{</c> and <c>}}</c> stand for literal braces.
/// </summary>
public static class RuleTemplate
{
    public static JsonNode? Render(JsonNode? template, EntryContext context) => template switch
    {
        JsonObject obj => new JsonObject(obj.Select(p => KeyValuePair.Create(p.Key, Render(p.Value, context)))),
        JsonArray array => new JsonArray([.. array.Select(item => Render(item, context))]),
        JsonValue value when value.TryGetValue<string>(out var text) => RenderString(text, context),
        null => null,
        _ => template.DeepClone(),
    };

    /// <summary>A template string rendered as text (for keys and actor ids): values are written without quotes.</summary>
    public static string RenderText(string template, EntryContext context) =>
        Render(JsonValue.Create(template), context) switch
        {
            JsonValue value when value.TryGetValue<string>(out var text) => text,
            null => "",
            var other => other.ToJsonString(),
        };

    /// <summary>The paths a template string refers to; throws <see cref="FormatException"/> on an unbalanced brace.</summary>
    public static IReadOnlyList<string> Placeholders(string template)
    {
        var paths = new List<string>();
        Scan(template, literal: null, path => paths.Add(path));
        return paths;
    }

    private static JsonNode? RenderString(string text, EntryContext context)
    {
        var placeholders = Placeholders(text);
        if (placeholders.Count == 1 && text == "{" + placeholders[0] + "}")
        {
            return context.Resolve(placeholders[0])?.DeepClone();
        }

        var result = new StringBuilder();
        Scan(text, literal: c => result.Append(c), path => result.Append(context.Resolve(path) switch
        {
            JsonValue value when value.TryGetValue<string>(out var s) => s,
            null => "",
            var other => other.ToJsonString(),
        }));
        return result.ToString();
    }

    private static void Scan(string text, Action<char>? literal, Action<string> placeholder)
    {
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if ((c == '{' || c == '}') && i + 1 < text.Length && text[i + 1] == c)
            {
                literal?.Invoke(c);
                i++;
            }
            else if (c == '{')
            {
                var end = text.IndexOf('}', i + 1);
                if (end < 0)
                {
                    throw new FormatException($"'{{' at {i} has no closing '}}' (write {{{{ for a literal brace)");
                }

                placeholder(text[(i + 1)..end].Trim());
                i = end;
            }
            else if (c == '}')
            {
                throw new FormatException($"'}}' at {i} has no opening '{{' (write }}}} for a literal brace)");
            }
            else
            {
                literal?.Invoke(c);
            }
        }
    }
}
