using System.Diagnostics.Metrics;

namespace PR2.Grains;

/// <summary>
/// PR2's own instruments, on the <c>PR2</c> meter (System.Diagnostics.Metrics): names start with <c>pr2.</c>, so they
/// scrape as <c>pr2_...</c> in Prometheus. Gauges that need the whole cluster's state (agent and replica lag) read the
/// latest status snapshot a silo service takes (<see cref="ObserveStatus"/>).
/// </summary>
public static class Pr2Metrics
{
    public const string MeterName = "PR2";

    private static readonly Meter Meter = new(MeterName);

    /// <summary>PR2's spans (a group commit), on the <c>PR2</c> activity source.</summary>
    public static readonly System.Diagnostics.ActivitySource Traces = new(MeterName);

    public static readonly Counter<long> Acks = Meter.CreateCounter<long>("pr2.acks", "{ack}", "Writes acknowledged, by shard, kind and whether a retry got an earlier ack (duplicate)");

    public static readonly Histogram<double> AckDuration = Meter.CreateHistogram<double>("pr2.ack.duration", "s", "Time from a write reaching its grain to its acknowledgement, by shard");

    public static readonly Counter<long> Refusals = Meter.CreateCounter<long>("pr2.refusals", "{refusal}", "Writes refused, by error code and whether a retry may succeed");

    public static readonly Histogram<long> CommitBatchSize = Meter.CreateHistogram<long>("pr2.commit.batch_size", "{entry}", "Entries per group commit, by shard");

    public static readonly Histogram<double> CommitDuration = Meter.CreateHistogram<double>("pr2.commit.duration", "s", "Time of one group commit (open to commit), by shard");

    public static readonly Counter<long> OverlappedCommits = Meter.CreateCounter<long>("pr2.commit.overlapped", "{commit}",
        "Group commits sent behind one in flight (Pr2:Write:OverlapCommits), by shard and outcome: committed, or undone (rolled back and planned again because the one ahead did not commit)");

    public static readonly Counter<long> WriterTakeovers = Meter.CreateCounter<long>("pr2.writer.takeovers", "{takeover}", "Journal writers opened (a first open, or a fail-over to another writer or replica), by shard");

    public static readonly Counter<long> AntiEntropyCopied = Meter.CreateCounter<long>("pr2.antientropy.copied", "{entry}", "Journal entries anti-entropy copied to a replica that lacked them, by shard");

    public static readonly UpDownCounter<long> StreamsOpen = Meter.CreateUpDownCounter<long>("pr2.http.streams_open", "{stream}", "Change streams (Server-Sent Events) open in this silo");

    private static Func<ClusterStatus?> _status = () => null;

    static Pr2Metrics()
    {
        Meter.CreateObservableGauge("pr2.agent.lag", () => AgentLag(), "{entry}", "Entries an agent is behind its shard's head, by agent and shard (from the latest status snapshot)");
        Meter.CreateObservableGauge("pr2.agent.delay", () => AgentDelay(), "s", "How long ago the oldest entry an agent has not applied was recorded (0: caught up), by agent and shard");
        Meter.CreateObservableGauge("pr2.replica.lag", () => ReplicaLag(), "{entry}", "Entries a replica lacks compared with the shard's reachable replicas, by shard and replica (-1: unreachable)");
        Meter.CreateObservableGauge("pr2.outbox.pending", () => ReplicaGauge(r => r.OutboxPending), "{message}", "Rule messages in a replica's outbox not delivered yet, by shard and replica");
        Meter.CreateObservableGauge("pr2.rules.parked", () => ReplicaGauge(r => r.Parked), "{entry}", "Entries a replica's rules parked (condition or action failed), by shard and replica");
    }

    /// <summary>Where the lag gauges read the cluster's state; the silo sets it once.</summary>
    public static void ObserveStatus(Func<ClusterStatus?> latest) => _status = latest;

    private static IEnumerable<Measurement<long>> AgentLag() =>
        from shard in _status()?.Shards ?? []
        from agent in shard.Agents
        select new Measurement<long>(agent.Lag, new("agent", agent.Agent), new("shard", shard.Shard));

    private static IEnumerable<Measurement<double>> AgentDelay() =>
        from shard in _status()?.Shards ?? []
        from agent in shard.Agents
        where agent.LagSeconds >= 0
        select new Measurement<double>(agent.LagSeconds, new("agent", agent.Agent), new("shard", shard.Shard));

    private static IEnumerable<Measurement<long>> ReplicaLag() => ReplicaGauge(r => r.Behind, unreachableToo: true);

    // One measurement per replica of every shard; an unreachable replica's -1 only where it means "unreachable".
    private static IEnumerable<Measurement<long>> ReplicaGauge(Func<ReplicaStatus, long> value, bool unreachableToo = false) =>
        from shard in _status()?.Shards ?? []
        from replica in shard.Replicas
        where unreachableToo || replica.Reachable
        select new Measurement<long>(value(replica), new("shard", shard.Shard), new("replica", replica.Index));
}
