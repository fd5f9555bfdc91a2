using System.Globalization;
using Orleans.Streams;
using PR2.Grains.Storage;

namespace PR2.Grains.Streaming;

/// <summary>
/// One queue per shard: every stream keyed by a shard code (its journal, its types) is read from that shard's queue.
/// The queues follow this silo's <see cref="ShardRegistry"/>, so a shard added at runtime has one as soon as the silo
/// knows it (<see cref="ShardQueueBalancer"/> hands it to a silo).
/// </summary>
public sealed class JournalQueueMapper(ShardRegistry shards) : IStreamQueueMapper
{
    private const string QueueName = "pr2-journal";

    public IEnumerable<QueueId> GetAllQueues() => shards.ShardCodes.Select(QueueOf);

    public QueueId GetQueueForStream(StreamId streamId) =>
        int.TryParse(streamId.GetKeyAsString(), NumberStyles.None, CultureInfo.InvariantCulture, out var shard) && shards.Contains(shard)
            ? QueueOf(shard)
            : throw new ArgumentException($"stream {streamId} is not a PR2 journal stream: its key must be the code of a shard of this cluster", nameof(streamId));

    /// <summary>The shard a queue reads.</summary>
    public static int ShardOf(QueueId queue) => (int)queue.GetNumericId();

    private static QueueId QueueOf(int shard) => QueueId.GetQueueId(QueueName, (uint)shard, unchecked((uint)shard * 2654435761u));
}
