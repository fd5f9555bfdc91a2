namespace PR2.Samples.SiloWithRule;

/// <summary>The orders of one shard (key = shard code), as a grain following the shard's <c>pr2/order</c> journal stream sees them.</summary>
public interface IOrderTotalsGrain : IGrainWithIntegerKey
{
    Task<OrderTotals> Get();
}
