using System.Text.RegularExpressions;

namespace PR2.Grains.Configuration;

/// <summary>What a shard's name, owner and labels may be: short text, label keys as Kubernetes writes them.</summary>
public static partial class ShardMetadataRules
{
    public const int MaxText = 200;
    public const int MaxLabels = 32;

    /// <summary>Why the metadata cannot be recorded, or null when it can (a null label value removes the label).</summary>
    public static string? Problem(string? name, string? owner, IReadOnlyDictionary<string, string?>? labels)
    {
        if (name?.Length > MaxText || owner?.Length > MaxText)
        {
            return $"a shard's name and owner are at most {MaxText} characters";
        }

        if (new[] { name, owner }.Concat(labels?.Values ?? []).Any(text => text?.Any(char.IsControl) == true))
        {
            return "a shard's name, owner and label values are text without control characters";
        }

        foreach (var (key, value) in labels ?? new Dictionary<string, string?>())
        {
            if (!LabelKey().IsMatch(key))
            {
                return $"label '{Clip(key)}': a label key is 1 to 63 letters, digits, '.', '_', '-' or '/', starting with a letter or digit";
            }

            if (value?.Length > MaxText)
            {
                return $"label '{key}': a value is at most {MaxText} characters";
            }
        }

        return null;
    }

    private static string Clip(string text) => text.Length > 40 ? text[..40] + "..." : text;

    [GeneratedRegex(@"\A[A-Za-z0-9][A-Za-z0-9._/-]{0,62}\z")]
    private static partial Regex LabelKey();
}
