using Orleans.Streams;

namespace PR2;

/// <summary>
/// Where a journal stream is: the entry delivered (its origin replica and origin position, the same on every replica)
/// and, per origin, the highest origin position delivered up to and including it (a version vector). Entries of one
/// origin reach every replica in origin order, so the vector names exactly the set of entries delivered, whichever
/// replica the stream was read from: resuming from a token after a change of primary or a silo restart skips nothing
/// and delivers again only entries the token <see cref="Includes(JournalStreamToken)"/>.
/// </summary>
[GenerateSerializer, Immutable, Alias("pr2.journal-stream-token.v1")]
public sealed class JournalStreamToken : StreamSequenceToken
{
    [Id(0)]
    private readonly KeyValuePair<Guid, long>[] _delivered;

    public JournalStreamToken(Guid origin, long originPosition, IEnumerable<KeyValuePair<Guid, long>> delivered)
    {
        Origin = origin;
        OriginPosition = originPosition;
        _delivered = [.. delivered.Where(p => p.Value > 0).OrderBy(p => p.Key)];
        SequenceNumber = _delivered.Sum(p => p.Value);
    }

    /// <summary>
    /// Before the first entry: a subscriber with no stored token resumes from it to be given every entry the stream still
    /// holds for its shard. With <c>null</c> it would go on from where the stream is for it now, and the entries read before
    /// its subscription was first registered (late under faults: a silo or the pub-sub grain lost mid-registration) would
    /// never reach it. If the stream no longer holds the first entries (the silo reading the shard started from its
    /// checkpoint), it gives the oldest it holds. Not for storing: a subscriber stores the tokens of the entries it was given.
    /// </summary>
    public static JournalStreamToken Start { get; } = new(Guid.Empty, 0, []);

    /// <summary>The replica that first wrote the entry.</summary>
    [Id(1)]
    public Guid Origin { get; }

    /// <summary>The entry's position among its origin's writes.</summary>
    [Id(2)]
    public long OriginPosition { get; }

    /// <summary>How many entries the stream had delivered up to and including this one (the vector's sum; for display, not for comparing).</summary>
    [Id(3)]
    public override long SequenceNumber { get; protected set; }

    /// <summary>Always 0: one entry per batch.</summary>
    [Id(4)]
    public override int EventIndex { get; protected set; }

    /// <summary>Per origin, the highest origin position delivered up to and including this entry.</summary>
    public IReadOnlyDictionary<Guid, long> Delivered => _delivered.ToDictionary(p => p.Key, p => p.Value);

    /// <summary>True when the entry (<paramref name="origin"/>, <paramref name="originPosition"/>) was delivered at or before this token.</summary>
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

    /// <summary>True when <paramref name="other"/>'s entry was delivered at or before this token: a subscriber that stored this token drops it.</summary>
    public bool Includes(JournalStreamToken other) => Includes(other.Origin, other.OriginPosition);

    /// <summary>The text form (base64url), e.g. for storing or for an SSE event id.</summary>
    public override string ToString() => OriginPairsText.Encode(Origin, OriginPosition, _delivered);

    /// <summary>Reads the text form of <see cref="ToString"/>.</summary>
    /// <exception cref="FormatException">Not a journal stream token.</exception>
    public static JournalStreamToken Parse(string text)
    {
        var pairs = OriginPairsText.Decode(text);
        if (pairs is null || pairs.Count < 2)
        {
            throw new FormatException("not a journal stream token");
        }

        var token = new JournalStreamToken(pairs[0].Key, pairs[0].Value, pairs.Skip(1));
        if (!token.Includes(token.Origin, token.OriginPosition) || token.OriginPosition < 1)
        {
            throw new FormatException("not a journal stream token: its entry is not among those it says were delivered");
        }

        return token;
    }

    public override bool Equals(StreamSequenceToken? other) =>
        other is JournalStreamToken token && token.Origin == Origin && token.OriginPosition == OriginPosition;

    public override bool Equals(object? obj) => obj is StreamSequenceToken token && Equals(token);

    public override int GetHashCode() => HashCode.Combine(Origin, OriginPosition);

    /// <summary>
    /// Older (-1) only when <paramref name="other"/> includes this token's entry (or this is <see cref="Start"/>), the same
    /// (0) for the same entry, else
    /// newer (1). Not a sum or a position: those depend on the replica read and the order origins met there, and Orleans
    /// passes over what compares older than a subscriber's token as already processed. Within one read this is read order.
    /// </summary>
    public override int CompareTo(StreamSequenceToken? other) =>
        other is not JournalStreamToken token ? 1
        : token.Origin == Origin && token.OriginPosition == OriginPosition ? 0
        : OriginPosition == 0 || token.Includes(this) ? -1 // Start is older than every entry
        : 1;
}
