using System.Buffers;

namespace PR2;

/// <summary>
/// The address of an actor: a shard code and an actor id of the form <c>type/key</c>, e.g. <c>order/42</c>.
/// The type is lowercase letters, digits, <c>_</c> and <c>-</c>, starting with a letter (at most 64 characters);
/// the key is letters, digits and <c>. _ - : @ ~ /</c> (at most 190 characters).
/// Construct through <see cref="Create"/> or <see cref="TryValidate"/> so that a bad id is refused at the edge.
/// </summary>
[GenerateSerializer, Immutable, Alias("pr2.actor-ref.v1")]
public sealed record ActorRef(
    [property: Id(0)] int Shard,
    [property: Id(1)] string ActorId)
{
    public const int MaxTypeLength = 64;
    public const int MaxKeyLength = 190;

    private static readonly SearchValues<char> TypeChars =
        SearchValues.Create("abcdefghijklmnopqrstuvwxyz0123456789_-");

    private static readonly SearchValues<char> KeyChars =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-:@~/");

    /// <summary>The part before the first <c>/</c>: the actor type, e.g. <c>order</c>.</summary>
    public string Type => ActorId[..ActorId.IndexOf('/', StringComparison.Ordinal)];

    /// <summary>The part after the first <c>/</c>.</summary>
    public string Key => ActorId[(ActorId.IndexOf('/', StringComparison.Ordinal) + 1)..];

    /// <summary>Builds a validated reference or throws <see cref="Pr2Exception"/> with <see cref="ErrorCode.BadActorId"/> (<see cref="ErrorCode.UnknownShard"/> for a negative shard).</summary>
    public static ActorRef Create(int shard, string actorId)
    {
        if (shard < 0)
        {
            throw new Pr2Exception(ErrorCode.UnknownShard, $"shard {shard} does not exist: shard codes are >= 0");
        }

        if (TryValidate(shard, actorId, out var problem))
        {
            return new ActorRef(shard, actorId);
        }

        throw new Pr2Exception(ErrorCode.BadActorId, problem);
    }

    /// <summary>Checks a shard code and actor id; on failure <paramref name="problem"/> says what is wrong.</summary>
    public static bool TryValidate(int shard, string? actorId, out string problem)
    {
        if (shard < 0)
        {
            problem = $"shard code must be >= 0, got {shard}";
            return false;
        }

        if (string.IsNullOrEmpty(actorId))
        {
            problem = "actor id is empty; expected type/key, e.g. order/42";
            return false;
        }

        var slash = actorId.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0)
        {
            problem = $"actor id '{Shorten(actorId)}' has no '/'; expected type/key, e.g. order/42";
            return false;
        }

        var type = actorId.AsSpan(0, slash);
        var key = actorId.AsSpan(slash + 1);
        if (type.IsEmpty || type.Length > MaxTypeLength || type[0] is < 'a' or > 'z' || type.ContainsAnyExcept(TypeChars))
        {
            problem = $"actor type in '{Shorten(actorId)}' must start with a-z and use only a-z, 0-9, '_' and '-' (1..{MaxTypeLength} characters)";
            return false;
        }

        if (key.IsEmpty || key.Length > MaxKeyLength || key.ContainsAnyExcept(KeyChars))
        {
            problem = $"actor key in '{Shorten(actorId)}' must be 1..{MaxKeyLength} characters of letters, digits and . _ - : @ ~ /";
            return false;
        }

        problem = "";
        return true;
    }

    /// <summary>
    /// The actor types of the control shard that PR2 itself keeps (rules, the shard map, agent registrations): callers
    /// change them through PR2's operations, never by sending them messages (<see cref="ErrorCode.ReservedActor"/>).
    /// </summary>
    public static IReadOnlyList<string> ReservedTypes { get; } = ["agent", "rule", "shard"];

    /// <summary>True for an actor of shard 0 whose type is one of <see cref="ReservedTypes"/>.</summary>
    public bool IsReserved => Shard == 0 && ReservedTypes.Contains(Type);

    public override string ToString() => $"{Shard}:{ActorId}";

    private static string Shorten(string text) => text.Length <= 80 ? text : text[..77] + "...";
}
