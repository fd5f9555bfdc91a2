namespace PR2.Tests.Streams;

/// <summary>An implicit journal stream subscriber (key = shard code) that stores its token in grain storage.</summary>
public interface ITokenKeepingSubscriberGrain : IGrainWithIntegerKey
{
    /// <summary>What it kept, dropped and how often it was activated (its stored state plus what it has not stored yet).</summary>
    Task<SubscriberState> Seen();

    /// <summary>The silo this activation runs on.</summary>
    Task<SiloAddress> Silo();

    /// <summary>Deactivates (storing first), so that the next call places it again.</summary>
    Task Leave();
}
