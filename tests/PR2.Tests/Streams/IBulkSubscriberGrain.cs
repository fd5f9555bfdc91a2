namespace PR2.Tests.Streams;

/// <summary>A token-keeping subscriber of a shard's <c>pr2/bulk</c> stream (key = shard code).</summary>
public interface IBulkSubscriberGrain : ITokenKeepingSubscriberGrain;
