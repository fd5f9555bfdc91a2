using System.Threading.Channels;
using Orleans.Streams;

namespace PR2.Client;

/// <summary>
/// The live part of a watch: a subscription to a shard's journal stream (its type's stream when a type is asked for)
/// from a place, into a buffer of at most <see cref="Capacity"/> changes. A change the place already includes is dropped
/// (a delivery tried again). A reader that falls behind by a full buffer is not waited for: the subscription ends
/// (<see cref="Overflowed"/>) and the watch reads the rest from the journal at its own pace, so a slow reader holds a
/// bounded buffer. A stream error (entries that left the stream's cache) ends it the same way.
/// </summary>
internal sealed class LiveChanges : IAsyncObserver<RecordChange>
{
    public const int Capacity = 1000;

    private readonly Channel<RecordChange> _buffer = Channel.CreateBounded<RecordChange>(
        new BoundedChannelOptions(Capacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });

    private WatchPosition _accepted;
    private StreamSubscriptionHandle<RecordChange>? _subscription;

    private readonly int _shard;

    private LiveChanges(int shard, WatchPosition after)
    {
        _shard = shard;
        _accepted = after;
    }

    /// <summary>True when the subscription ended because the reader fell a full buffer behind.</summary>
    public bool Overflowed { get; private set; }

    /// <summary>Changes as they arrive; the sequence ends when the subscription does (overflow or stream error).</summary>
    public ChannelReader<RecordChange> Changes => _buffer.Reader;

    public static async Task<LiveChanges> StartAsync(IStreamProvider provider, int shard, string? type, WatchPosition after)
    {
        var live = new LiveChanges(shard, after);
        var stream = provider.GetStream<RecordChange>(type is null ? Pr2Streams.Journal(shard) : Pr2Streams.OfType(shard, type));
        live._subscription = await stream.SubscribeAsync(live, new JournalStreamToken(Guid.Empty, 0, after.Delivered));
        return live;
    }

    public Task OnNextAsync(RecordChange item, StreamSequenceToken? token = null)
    {
        var at = (JournalStreamToken)token!;
        if (Overflowed || _accepted.Includes(at.Origin, at.OriginPosition))
        {
            return Task.CompletedTask;
        }

        if (!_buffer.Writer.TryWrite(item))
        {
            // Full (the reader fell behind), or ended already (stopped, or a stream error): only the first counts.
            if (_buffer.Writer.TryComplete())
            {
                Overflowed = true;
                WatchMetrics.CaughtUp.Add(1, new("shard", _shard), new("reason", "overflow"));
            }

            return Task.CompletedTask;
        }

        _accepted = item.Resume!;
        return Task.CompletedTask;
    }

    public Task OnCompletedAsync()
    {
        _buffer.Writer.TryComplete();
        return Task.CompletedTask;
    }

    public Task OnErrorAsync(Exception ex)
    {
        if (_buffer.Writer.TryComplete(ex))
        {
            WatchMetrics.CaughtUp.Add(1, new("shard", _shard), new("reason", "stream"));
        }

        return Task.CompletedTask;
    }

    /// <summary>Ends the subscription (best effort: a client that is gone is dropped by the stream on its own).</summary>
    public async Task StopAsync()
    {
        _buffer.Writer.TryComplete();
        if (_subscription is { } subscription)
        {
            try
            {
                await subscription.UnsubscribeAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }
            catch (Exception e) when (e is TimeoutException or OrleansException or Pr2Exception)
            {
                // The pub-sub store did not answer: try again in the background for a while. (A frontend's client that
                // goes away has its subscriptions removed by the stream; a silo's own watches only by unsubscribing.)
                _ = RetryUnsubscribeAsync(subscription);
            }
        }
    }

    private static async Task RetryUnsubscribeAsync(StreamSubscriptionHandle<RecordChange> subscription)
    {
        for (var attempt = 1; attempt <= 12; attempt++)
        {
            await Task.Delay(TimeSpan.FromSeconds(5 * attempt));
            try
            {
                await subscription.UnsubscribeAsync().WaitAsync(TimeSpan.FromSeconds(10));
                return;
            }
            catch (Exception e) when (e is TimeoutException or OrleansException or Pr2Exception)
            {
                // Still not answering: later.
            }
        }
    }
}
