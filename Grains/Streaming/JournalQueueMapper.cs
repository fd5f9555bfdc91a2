using Orleans.Streams;

namespace PR2.Grains.Streaming;

/// <summary>
/// One queue per shard: every stream keyed by a shard code (its journal, its types) is read from that shard's queue.
/// Queues sit on Orleans' consistent ring by a spread of the shard code, so the silos share the shards' readers.
/// </summary>
public sealed class JournalQueueMapper : IConsistentRingStreamQueueMapper
{
    private const string QueueName = "pr2-journal";
    private readonly Dictionary<int, QueueId> _queues;

    public JournalQueueMapper(IEnumerable<int> shards) =>
        _queues = shards.ToDictionary(shard => shard, shard => QueueId.GetQueueId(QueueName, (uint)shard, unchecked((uint)shard * 2654435761u)));

    public IEnumerable<QueueId> GetAllQueues() => _queues.Values;

    public IEnumerable<QueueId> GetQueuesForRange(IRingRange range) => _queues.Values.Where(queue => range.InRange(queue.GetUniformHashCode()));

    public QueueId GetQueueForStream(StreamId streamId) =>
        int.TryParse(streamId.GetKeyAsString(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var shard)
        && _queues.TryGetValue(shard, out var queue)
            ? queue
            : throw new ArgumentException($"stream {streamId} is not a PR2 journal stream: its key must be a configured shard code", nameof(streamId));

    /// <summary>The shard a queue reads.</summary>
    public static int ShardOf(QueueId queue) => (int)queue.GetNumericId();
}
