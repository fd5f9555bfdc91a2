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
}
