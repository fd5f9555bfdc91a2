using System.CommandLine;
using System.Globalization;

namespace PR2.Client.Cli;

/// <summary>
/// An actor on the command line, in either form: two tokens (<c>1 order/42</c>) or the one PR2 prints
/// (<c>1:order/42</c>), so what a command prints can be pasted back.
/// </summary>
public static class ActorTokens
{
    public const string Usage = "the actor as 'shard type/key' or as printed, 'shard:type/key'";

    /// <summary>How many tokens the actor takes at <paramref name="start"/>: 1 for the printed form, else 2.</summary>
    public static int Width(IReadOnlyList<string> tokens, int start) => tokens.Count > start && tokens[start].Contains(':', StringComparison.Ordinal) ? 1 : 2;

    /// <summary>
    /// The shard and actor id at <paramref name="start"/>, or null with <paramref name="problem"/> saying why. The id
    /// itself is checked where every client checks it (a bad one is refused as <c>BadActorId</c>).
    /// </summary>
    public static (int Shard, string ActorId)? TryParse(IReadOnlyList<string> tokens, int start, out string problem)
    {
        problem = "";
        string shardText, actorId;
        if (Width(tokens, start) == 1)
        {
            var colon = tokens[start].IndexOf(':', StringComparison.Ordinal);
            (shardText, actorId) = (tokens[start][..colon], tokens[start][(colon + 1)..]);
        }
        else if (tokens.Count > start + 1)
        {
            (shardText, actorId) = (tokens[start], tokens[start + 1]);
        }
        else
        {
            problem = $"expected {Usage}";
            return null;
        }

        if (!int.TryParse(shardText, NumberStyles.None, CultureInfo.InvariantCulture, out var shard))
        {
            problem = $"'{shardText}' is not a shard code ({Usage})";
            return null;
        }

        return (shard, actorId);
    }

    /// <summary>Adds a parse error to <paramref name="result"/> when its tokens do not start with an actor.</summary>
    public static void Validate(System.CommandLine.Parsing.ArgumentResult result, int start = 0)
    {
        var tokens = result.Tokens.Select(t => t.Value).ToList();
        if (TryParse(tokens, start, out var problem) is null)
        {
            result.AddError(problem);
        }
    }

    /// <summary>The shard and actor id a validated argument holds.</summary>
    public static (int Shard, string ActorId) Parse(IReadOnlyList<string> tokens, int start = 0) =>
        TryParse(tokens, start, out var problem) ?? throw new FormatException(problem);
}
