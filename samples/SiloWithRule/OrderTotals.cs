namespace PR2.Samples.SiloWithRule;

/// <summary>Orders placed and canceled in a shard, the sum of their totals when placed, and the stream token they count up to.</summary>
[GenerateSerializer]
public sealed class OrderTotals
{
    [Id(0)]
    public long Placed { get; set; }

    [Id(1)]
    public long Canceled { get; set; }

    [Id(2)]
    public decimal Total { get; set; }

    /// <summary>The last entry counted (<see cref="JournalStreamToken"/> text): stored with the counts, so nothing counts twice.</summary>
    [Id(3)]
    public string? Token { get; set; }
}
