namespace PR2.Samples.OrdersWeb;

/// <summary>An order as this frontend stores it: the state of an <c>order/{id}</c> actor.</summary>
public sealed record Order(string Customer, decimal Total, string? Note = null);
