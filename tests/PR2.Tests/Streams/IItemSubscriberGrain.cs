namespace PR2.Tests.Streams;

/// <summary>A token-keeping subscriber of a shard's <c>pr2/item</c> stream (key = shard code): the fault suite's actors.</summary>
public interface IItemSubscriberGrain : ITokenKeepingSubscriberGrain;
