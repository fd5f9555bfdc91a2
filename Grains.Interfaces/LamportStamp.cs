namespace PR2;

/// <summary>
/// A Lamport timestamp: the logical time at which a shard accepted an entry. Stamps order entries across
/// the whole cluster by <see cref="Counter"/>, then <see cref="Shard"/>; ties within a shard cannot happen
/// because a shard's clock only moves forward. Wall clocks play no part.
/// </summary>
[GenerateSerializer, Immutable, Alias("pr2.lamport.v1")]
public readonly record struct LamportStamp(
    [property: Id(0)] long Counter,
    [property: Id(1)] int Shard) : IComparable<LamportStamp>
{
    public int CompareTo(LamportStamp other)
    {
        var byCounter = Counter.CompareTo(other.Counter);
        return byCounter != 0 ? byCounter : Shard.CompareTo(other.Shard);
    }

    public static bool operator <(LamportStamp left, LamportStamp right) => left.CompareTo(right) < 0;

    public static bool operator >(LamportStamp left, LamportStamp right) => left.CompareTo(right) > 0;

    public static bool operator <=(LamportStamp left, LamportStamp right) => left.CompareTo(right) <= 0;

    public static bool operator >=(LamportStamp left, LamportStamp right) => left.CompareTo(right) >= 0;

    public override string ToString() => $"{Counter}@{Shard}";

    /// <summary>Reads the text form <c>counter@shard</c>.</summary>
    /// <exception cref="Pr2Exception">BadMessage when the text is not of that form.</exception>
    public static LamportStamp Parse(string text)
    {
        var at = text.IndexOf('@', StringComparison.Ordinal);
        return at > 0
            && long.TryParse(text.AsSpan(0, at), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var counter)
            && int.TryParse(text.AsSpan(at + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var shard)
            ? new LamportStamp(counter, shard)
            : throw new Pr2Exception(ErrorCode.BadMessage, $"a stamp is counter@shard (as acknowledgements show them), got '{text}'");
    }
}
