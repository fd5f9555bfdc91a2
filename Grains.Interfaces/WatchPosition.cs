namespace PR2;

/// <summary>
/// Where a watch of record changes is, in a form that survives a change of primary: the replica read and the position
/// there, and per origin replica the highest origin position among the changes delivered. While the same replica is
/// primary the watch goes on after the position; on another one it starts just before the first entry of each origin
/// it has not delivered, and skips what it has. Its text form (<see cref="ToString"/>) is an SSE event id.
/// </summary>
[GenerateSerializer, Immutable, Alias("pr2.watch-position.v1")]
public sealed class WatchPosition
{
    [Id(0)]
    private readonly KeyValuePair<Guid, long>[] _delivered;

    public WatchPosition(Guid replica, long position, IEnumerable<KeyValuePair<Guid, long>> delivered)
    {
        Replica = replica;
        Position = position;
        _delivered = [.. delivered.Where(p => p.Value > 0).OrderBy(p => p.Key)];
    }

    /// <summary>The replica the position is on (<see cref="Guid.Empty"/>: whichever is primary, as a bare position).</summary>
    [Id(1)]
    public Guid Replica { get; }

    /// <summary>The last position read on <see cref="Replica"/>.</summary>
    [Id(2)]
    public long Position { get; }

    /// <summary>Per origin, the highest origin position delivered.</summary>
    public IReadOnlyDictionary<Guid, long> Delivered => _delivered.ToDictionary(p => p.Key, p => p.Value);

    /// <summary>A bare position on the current primary (what earlier versions used; not safe across a change of primary).</summary>
    public static WatchPosition At(long position) => new(Guid.Empty, position, []);

    /// <summary>True when the entry (<paramref name="origin"/>, <paramref name="originPosition"/>) is at or before this place.</summary>
    public bool Includes(Guid origin, long originPosition)
    {
        foreach (var (key, value) in _delivered)
        {
            if (key == origin)
            {
                return originPosition <= value;
            }
        }

        return false;
    }

    /// <summary>This place moved past one more entry read on <paramref name="replica"/>.</summary>
    public WatchPosition After(Guid replica, long position, Guid origin, long originPosition) =>
        new(replica, position, _delivered.Where(p => p.Key != origin).Append(new(origin, Math.Max(originPosition, Delivered.GetValueOrDefault(origin)))));

    /// <summary>The text form: base64url, 24 bytes for replica and position, 24 per origin.</summary>
    public override string ToString() => OriginPairsText.Encode(Replica, Position, _delivered);

    /// <summary>Reads <see cref="ToString"/>'s form, or a bare position (digits).</summary>
    /// <exception cref="FormatException">Neither.</exception>
    public static WatchPosition Parse(string text)
    {
        if (long.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var position))
        {
            return At(position);
        }

        var pairs = OriginPairsText.Decode(text);
        if (pairs is null || pairs[0].Value < 0)
        {
            throw new FormatException("not a watch position");
        }

        return new WatchPosition(pairs[0].Key, pairs[0].Value, pairs.Skip(1));
    }
}
