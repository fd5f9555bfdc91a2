namespace PR2.Bench;

/// <summary>A line of <see cref="OrderPlaced"/>.</summary>
public sealed record OrderLine(string Sku, int Qty, decimal Price);
