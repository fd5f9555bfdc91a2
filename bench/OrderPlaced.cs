namespace PR2.Bench;

/// <summary>Marten's event for the same payload.</summary>
public sealed record OrderPlaced(string Customer, long Order, decimal Total, string Currency, IReadOnlyList<OrderLine> Items, string Note);
