namespace PR2;

/// <summary>
/// The shard journals as Orleans streams. Provider <see cref="ProviderName"/>; per shard (stream key = shard code)
/// one stream of every committed entry (<see cref="JournalNamespace"/>) and one per actor type
/// (<see cref="TypeNamespace"/>, e.g. <c>pr2/order</c>). Events are <see cref="JournalEntry"/>; each comes with a
/// <see cref="JournalStreamToken"/> that a subscriber stores to resume and to drop what it already has.
/// </summary>
public static class Pr2Streams
{
    /// <summary>The stream provider's name (<c>this.GetStreamProvider(Pr2Streams.ProviderName)</c>).</summary>
    public const string ProviderName = "pr2";

    /// <summary>The namespace of the streams of whole shard journals.</summary>
    public const string JournalNamespace = "pr2";

    /// <summary>The prefix of the per-type namespaces.</summary>
    public const string TypePrefix = "pr2/";

    /// <summary>The namespace of the stream of <paramref name="actorType"/> entries (<c>pr2/order</c>).</summary>
    public static string TypeNamespace(string actorType) => TypePrefix + actorType;

    /// <summary>The stream of every entry of <paramref name="shard"/>.</summary>
    public static StreamId Journal(int shard) => StreamId.Create(JournalNamespace, shard);

    /// <summary>The stream of the <paramref name="actorType"/> entries of <paramref name="shard"/>.</summary>
    public static StreamId OfType(int shard, string actorType) => StreamId.Create(TypeNamespace(actorType), shard);
}
