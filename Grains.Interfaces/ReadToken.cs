using System.Buffers.Binary;
using System.Buffers.Text;

namespace PR2;

/// <summary>
/// What a session has seen: per shard, a version vector (per origin replica, the highest origin position).
/// Writes and reads return one; a <see cref="ReadConsistency.Session"/> read passes it back and is answered
/// only by a replica that holds all of it (read-your-writes, monotonic reads). Opaque to users: its text form
/// (<see cref="ToString"/>, <see cref="Parse"/>) is compact base64url.
/// </summary>
[GenerateSerializer, Immutable, Alias("pr2.read-token.v1")]
public sealed class ReadToken
{
    private const byte FormatVersion = 1;
    private const int PartBytes = 4 + 16 + 8;

    /// <summary>A token that requires nothing.</summary>
    public static readonly ReadToken Empty = new([]);

    [Id(0)]
    private readonly ReadTokenPart[] _parts;

    private ReadToken(ReadTokenPart[] parts) => _parts = parts;

    /// <summary>The components, by shard then origin.</summary>
    public IReadOnlyList<ReadTokenPart> Parts => _parts;

    public bool IsEmpty => _parts.Length == 0;

    /// <summary>A token for one write: the entry at <paramref name="position"/> of <paramref name="origin"/> in <paramref name="shard"/>.</summary>
    public static ReadToken Of(int shard, Guid origin, long position) =>
        position > 0 ? new ReadToken([new ReadTokenPart(shard, origin, position)]) : Empty;

    /// <summary>A token for a shard's version vector.</summary>
    public static ReadToken Of(int shard, IEnumerable<KeyValuePair<Guid, long>> vector) =>
        Normalize(vector.Select(p => new ReadTokenPart(shard, p.Key, p.Value)));

    /// <summary>Everything either token has seen (per component, the higher position).</summary>
    public ReadToken Merge(ReadToken? other) =>
        other is null || other.IsEmpty ? this
        : IsEmpty ? other
        : other._parts.Length == 1 ? With(other._parts[0])
        : Normalize(_parts.Concat(other._parts));

    /// <summary>The part of this token about <paramref name="shard"/>: per origin, the position required.</summary>
    public IReadOnlyDictionary<Guid, long> ForShard(int shard) =>
        _parts.Where(p => p.Shard == shard).ToDictionary(p => p.Origin, p => p.Position);

    /// <summary>The text form: base64url of a version byte and 28 bytes per component.</summary>
    public override string ToString()
    {
        var bytes = new byte[1 + (_parts.Length * PartBytes)];
        bytes[0] = FormatVersion;
        var span = bytes.AsSpan(1);
        foreach (var part in _parts)
        {
            BinaryPrimitives.WriteInt32BigEndian(span, part.Shard);
            part.Origin.TryWriteBytes(span[4..20]);
            BinaryPrimitives.WriteInt64BigEndian(span[20..], part.Position);
            span = span[PartBytes..];
        }

        return Base64Url.EncodeToString(bytes);
    }

    /// <summary>Reads the text form; null or empty text is the empty token.</summary>
    /// <exception cref="Pr2Exception">BadMessage when the text is not a token this service gave out.</exception>
    public static ReadToken Parse(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return Empty;
        }

        byte[] bytes;
        try
        {
            bytes = Base64Url.DecodeFromChars(text);
        }
        catch (FormatException)
        {
            throw NotAToken();
        }

        if (bytes.Length == 0 || bytes[0] != FormatVersion || (bytes.Length - 1) % PartBytes != 0)
        {
            throw NotAToken();
        }

        var parts = new List<ReadTokenPart>();
        for (var span = bytes.AsSpan(1); span.Length > 0; span = span[PartBytes..])
        {
            var position = BinaryPrimitives.ReadInt64BigEndian(span[20..]);
            if (position < 0)
            {
                throw NotAToken();
            }

            parts.Add(new ReadTokenPart(BinaryPrimitives.ReadInt32BigEndian(span), new Guid(span[4..20]), position));
        }

        return Normalize(parts);
    }

    // Merging one write's token, the common case (every acknowledgement): no grouping, and no new token when
    // this one already covers it.
    private ReadToken With(ReadTokenPart part)
    {
        for (var i = 0; i < _parts.Length; i++)
        {
            if (_parts[i].Shard == part.Shard && _parts[i].Origin == part.Origin)
            {
                if (_parts[i].Position >= part.Position)
                {
                    return this;
                }

                var parts = (ReadTokenPart[])_parts.Clone();
                parts[i] = part;
                return new ReadToken(parts);
            }
        }

        return Normalize(_parts.Append(part));
    }

    private static Pr2Exception NotAToken() => new(ErrorCode.BadMessage, "the read token is not one this service gave out");

    private static ReadToken Normalize(IEnumerable<ReadTokenPart> parts) =>
        new(parts.Where(p => p.Position > 0)
            .GroupBy(p => (p.Shard, p.Origin))
            .Select(g => g.MaxBy(p => p.Position))
            .OrderBy(p => p.Shard).ThenBy(p => p.Origin)
            .ToArray());
}
