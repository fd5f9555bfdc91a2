using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using NCalc;
using NCalc.Exceptions;

namespace PR2.Grains.Rules;

/// <summary>
/// A rule's condition: an NCalc expression whose parameters are paths in brackets, e.g.
/// <c>[body.total] &gt; 1000 and [entry.kind] = 'insert'</c>. JSON numbers become decimals, strings strings,
/// booleans booleans; a missing value is null (written <c>null</c>: <c>[body.total] != null</c>), and other comparisons with null are false.
/// </summary>
public sealed class RuleCondition
{
    // NCalc has no null literal: the bare name null is bound to null, so "[body.total] != null" reads naturally.
    private const string Null = "null";

    private readonly string _text;

    private RuleCondition(string text, IReadOnlyList<string> paths)
    {
        _text = text;
        Paths = paths;
    }

    public IReadOnlyList<string> Paths { get; }

    /// <summary>Checks syntax, paths and function names; returns the problem, or null when the text is a valid condition.</summary>
    public static RuleCondition Parse(string text, out string? problem)
    {
        var expression = new Expression(text);
        if (expression.HasErrors())
        {
            problem = expression.Error?.InnerException?.Message ?? expression.Error?.Message ?? "not a valid expression";
            return null!;
        }

        var paths = expression.GetParameterNames().Where(p => p != Null).ToList();
        if (paths.FirstOrDefault(p => !EntryContext.IsKnownRoot(p)) is { } unknown)
        {
            problem = $"[{unknown}] is not a path under entry, body or record";
            return null!;
        }

        // A dry run with every value null finds unknown functions (the parser accepts any name).
        try
        {
            Bind(expression, _ => null);
            expression.Evaluate();
        }
        catch (NCalcFunctionNotFoundException e)
        {
            problem = e.Message;
            return null!;
        }
        catch (Exception e) when (e is NCalcException or InvalidOperationException or ArgumentException or FormatException or InvalidCastException or NullReferenceException)
        {
            // Other failures with all-null values say nothing about real entries.
        }

        problem = null;
        return new RuleCondition(text, paths);
    }

    /// <summary>Evaluates the condition for an entry; throws <see cref="RuleFailure"/> when it fails or is not true/false.</summary>
    public bool IsTrue(EntryContext context)
    {
        object? result;
        try
        {
            var expression = new Expression(_text);
            Bind(expression, path => ToClr(context.Resolve(path)));
            result = expression.Evaluate();
        }
        catch (Exception e) when (e is NCalcException or InvalidOperationException or ArgumentException or FormatException or InvalidCastException or NullReferenceException or OverflowException or DivideByZeroException)
        {
            throw new RuleFailure($"condition failed: {e.Message}");
        }

        return result as bool? ?? throw new RuleFailure($"condition gave {result ?? "null"}, not true or false");
    }

    public override string ToString() => _text;

    private static void Bind(Expression expression, Func<string, object?> value) =>
        expression.EvaluateParameter += (name, args) => args.Result = name == Null ? null : value(name);

    private static object? ToClr(JsonNode? node) => node switch
    {
        null => null,
        // Through the text: a value built from a long cannot be read as a decimal directly.
        JsonValue v when v.GetValueKind() == JsonValueKind.Number => decimal.Parse(v.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture),
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
        _ => node.ToJsonString(),
    };
}
