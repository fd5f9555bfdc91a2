namespace PR2.Tests.Streams;

/// <summary>An explicit subscriber of a shard's <c>pr2/streamtest</c> stream that keeps what it saw in grain storage.</summary>
public interface IStreamWatcherGrain : IGrainWithStringKey
{
    Task Subscribe(int shard);

    Task<WatcherState> Seen();
}
