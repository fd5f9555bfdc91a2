namespace PR2.Tests.Streams;

/// <summary>A token-keeping subscriber's state: the MessageIds it kept in delivery order and the token of the last one.</summary>
[GenerateSerializer]
public sealed class SubscriberState
{
    [Id(0)]
    public List<Guid> Kept { get; set; } = [];

    [Id(1)]
    public string? Token { get; set; }

    [Id(2)]
    public int Dropped { get; set; }

    [Id(3)]
    public int Activations { get; set; }

    /// <summary>Deliveries the stored token did not include but whose MessageId was kept already: must stay 0.</summary>
    [Id(4)]
    public int RepeatedAboveToken { get; set; }

    /// <summary>Each kept entry's origin replica and origin position as delivered (a message held under two origins has one per replica).</summary>
    [Id(5)]
    public List<KeyValuePair<Guid, long>> KeptOrigins { get; set; } = [];

    /// <summary>What each activation resumed from and the errors the stream reported (for the report when an entry is missing).</summary>
    [Id(6)]
    public List<string> Trail { get; set; } = [];
}
