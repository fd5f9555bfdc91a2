using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.Streams;
using PR2.Grains.Storage;

namespace PR2.Grains.Streaming;

/// <summary>
/// Hands each shard's journal queue to one active silo and tells this silo's pulling agents when that changes: when
/// silos join or leave, when a shard joins this silo's <see cref="ShardRegistry"/> (added at runtime, so the new shard's
/// journal stream starts without a restart), and when what the silos report they joined changes. A queue goes to the
/// active silo with the highest score for it among those that may read the shard (<see cref="StreamReaders"/>):
/// rendezvous hashing, so every silo computes the same owner from the same membership and reports, and a silo joining
/// or leaving moves only the queues it wins or held.
/// </summary>
public sealed class ShardQueueBalancer : QueueBalancerBase
{
    private readonly ShardRegistry _shards;
    private readonly StreamReaders _readers;
    private IStreamQueueMapper? _mapper;
    private volatile SiloAddress[] _active = [];

    public ShardQueueBalancer(IServiceProvider services, ShardRegistry shards, StreamReaders readers, ILogger<ShardQueueBalancer> logger) : base(services, logger)
    {
        _shards = shards;
        _readers = readers;
        _shards.ShardAdded += OnShardAdded;
        _shards.ShardRemoved += OnShardAdded;
        _readers.Changed += OnReadersChanged;
    }

    public static IStreamQueueBalancer Create(IServiceProvider services, string name) => ActivatorUtilities.CreateInstance<ShardQueueBalancer>(services);

    public override Task Initialize(IStreamQueueMapper queueMapper)
    {
        _mapper = queueMapper;
        return base.Initialize(queueMapper);
    }

    public override Task Shutdown()
    {
        _shards.ShardAdded -= OnShardAdded;
        _shards.ShardRemoved -= OnShardAdded;
        _readers.Changed -= OnReadersChanged;
        return base.Shutdown();
    }

    /// <summary>The queues this silo reads: none until membership says which silos are active.</summary>
    public override IEnumerable<QueueId> GetMyQueues()
    {
        var active = _active;
        return _mapper is null || active.Length == 0 ? [] : [.. _mapper.GetAllQueues().Where(queue => OwnerOf(queue, Readers(queue, active)).Equals(SiloAddress))];
    }

    // The active silos that may read the queue's shard; all of them when none may (a misconfigured cluster, or no reports
    // yet): a queue is never left to no one.
    private SiloAddress[] Readers(QueueId queue, SiloAddress[] active)
    {
        var shard = JournalQueueMapper.ShardOf(queue);
        var readers = active.Where(silo => _readers.MayRead(silo, shard)).ToArray();
        return readers.Length > 0 ? readers : active;
    }

    protected override void OnClusterMembershipChange(HashSet<SiloAddress> activeSilos)
    {
        _active = [.. activeSilos];
        _ = NotifyListeners();
    }

    private void OnShardAdded(int shard) => _ = NotifyListeners();

    private void OnReadersChanged() => _ = NotifyListeners();

    // The active silo with the highest score for the queue; ties (never in practice) go to the lower address.
    private static SiloAddress OwnerOf(QueueId queue, SiloAddress[] active) =>
        active.OrderByDescending(silo => Score(queue.GetUniformHashCode(), (uint)silo.GetConsistentHashCode())).ThenBy(silo => silo.ToString(), StringComparer.Ordinal).First();

    // A 64-bit mix of the two hashes (SplitMix64's finalizer): the same on every silo, spread evenly over silos.
    private static ulong Score(uint queue, uint silo)
    {
        var x = ((ulong)queue << 32) | silo;
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9UL;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebUL;
        return x ^ (x >> 31);
    }
}
