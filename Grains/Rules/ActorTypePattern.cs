namespace PR2.Grains.Rules;

/// <summary>The actor types a rule reacts to: a type, a prefix ending in '*', or '*' for all.</summary>
public static class ActorTypePattern
{
    public static bool Matches(string pattern, string type) =>
        pattern == "*" || (pattern.EndsWith('*') ? type.StartsWith(pattern[..^1], StringComparison.Ordinal) : type == pattern);
}
