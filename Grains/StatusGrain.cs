using Npgsql;
using Orleans.Concurrency;
using PR2.Grains.Agents;
using PR2.Grains.Replication;
using PR2.Grains.Storage;

namespace PR2.Grains;

/// <summary>Answers status queries from the databases themselves, so what it reports is what is committed.</summary>
[StatelessWorker]
public sealed class StatusGrain(ShardRegistry shards, AgentCatalog agents, TopologyFollower topology) : Grain, IStatusGrain
{
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(2);

    public async Task<ClusterStatus> GetStatus()
    {
        var silos = SilosAsync();
        var changes = PrimaryChangesAsync();
        var statuses = (await Task.WhenAll(shards.ShardCodes.Select(ReadShardUnlessRemovedAsync))).OfType<ShardStatus>().ToArray();
        return new ClusterStatus(statuses, DateTimeOffset.UtcNow, await silos, await changes);
    }

    // The writers' own records of the primaries they chose (modifies of shard/{code} in the directory), newest first.
    private async Task<IReadOnlyList<PrimaryChange>?> PrimaryChangesAsync()
    {
        try
        {
            using var timeout = new CancellationTokenSource(ProbeTimeout);
            await using var command = shards.Get(0).Primary.CreateCommand("""
                select actor_id, (body->>'primary')::int, recorded_at from pr2_journal
                where actor_id = any($1) and kind = 2 and jsonb_typeof(body->'primary') = 'number'
                order by recorded_at desc, position desc limit 10
                """);
            command.Parameters.Add(new() { Value = shards.ShardCodes.Select(code => $"shard/{code}").ToArray() });
            await using var reader = await command.ExecuteReaderAsync(timeout.Token).WaitAsync(timeout.Token);
            var changes = new List<PrimaryChange>();
            while (await reader.ReadAsync(timeout.Token))
            {
                changes.Add(new PrimaryChange(int.Parse(reader.GetString(0)["shard/".Length..], System.Globalization.CultureInfo.InvariantCulture),
                    reader.GetInt32(1), reader.GetFieldValue<DateTimeOffset>(2)));
            }

            return changes;
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
        {
            return null;
        }
    }

    // Membership as the cluster sees it; the last entry per silo name (a restarted silo leaves its dead predecessor).
    private async Task<IReadOnlyList<SiloInfo>?> SilosAsync()
    {
        try
        {
            var hosts = await GrainFactory.GetGrain<IManagementGrain>(0).GetDetailedHosts(onlyActive: false).WaitAsync(ProbeTimeout);
            return [.. hosts.OrderBy(h => h.SiloName, StringComparer.Ordinal).ThenBy(h => h.StartTime)
                .Select(h => new SiloInfo(h.SiloName, h.SiloAddress.ToParsableString(), h.Status.ToString(), new DateTimeOffset(h.StartTime, TimeSpan.Zero)))];
        }
        catch (Exception e) when (e is TimeoutException or OrleansException)
        {
            return null;
        }
    }

    // The replicas as the directory records them now (one added a moment ago through another silo), not only as this silo
    // followed them last; with shard 0 not answering, as followed.
    private async Task FollowAsync(int shard)
    {
        try
        {
            await topology.RefreshShardAsync(shard).WaitAsync(ProbeTimeout);
        }
        catch (Exception e) when (e is Pr2Exception or TimeoutException or OrleansException or NpgsqlException)
        {
            // Shown as followed.
        }
    }

    // The shard's writer decides the primary, maybe on another silo: ask it (briefly), and fall back to what this
    // silo last heard while it cannot answer (a fail-over in progress).
    private async Task<int> PrimaryAsync(ShardReplicaSet set)
    {
        try
        {
            await CurrentPrimary.AskAsync(GrainFactory, set, ProbeTimeout);
        }
        catch (Pr2Exception)
        {
            // Shown as it is known here; the replica states below say which ones answer.
        }

        return set.PrimaryIndex;
    }

    // A shard released while the status is read (the refresh before reading it may release it here) is not shown.
    private async Task<ShardStatus?> ReadShardUnlessRemovedAsync(int shard)
    {
        try
        {
            return await ReadShardAsync(shard);
        }
        catch (Pr2Exception e) when (e.Code == ErrorCode.ShardRemoved)
        {
            return null;
        }
    }

    private async Task<ShardStatus> ReadShardAsync(int shard)
    {
        await FollowAsync(shard);
        var set = shards.Get(shard);
        var primary = await PrimaryAsync(set);
        // A removed replica is no longer the shard's: not shown (the directory's record lists it as removed).
        var replicas = await Task.WhenAll(set.Live.Select(async index =>
            await ReadReplicaAsync(shard, index, index == primary, set.Replicas[index]) with { Joining = set.Joining.Contains(index) }));
        replicas = WithBehind(replicas);
        // The primary as this silo last heard it may be a replica removed since (the writer did not answer in time).
        var primaryStatus = replicas.SingleOrDefault(r => r.Index == primary);
        var head = primaryStatus?.Head ?? -1;
        var clock = primaryStatus is { Reachable: true } ? await ClockAsync(set.Primary, shard) : -1;
        var progress = new List<AgentProgress>();
        foreach (var agent in agents.Agents.Where(a => a.Follows(shard)).OrderBy(a => a.Name, StringComparer.Ordinal))
        {
            try
            {
                // A per-replica agent is shown by its run on the primary.
                var replica = agent.PerReplica ? primary : 0;
                var mark = await AgentMarks.ReadAsync(AgentMarks.Home(agent, shards, shard, replica), AgentMarks.Name(agent, shard, replica), shard);
                var lag = head < 0 ? -1 : Math.Max(0, head - mark);
                progress.Add(new AgentProgress(agent.Name, mark, lag, lag switch { < 0 => -1, 0 => 0, _ => await AgeAsync(set.Replicas[primary], mark + 1) }));
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
            {
                progress.Add(new AgentProgress(agent.Name, -1, -1));
            }
        }

        return new ShardStatus(shard, head, clock, replicas, progress);
    }

    // The primary answered the probe a moment ago; it may not now (a fault): the status says unknown rather than fail.
    private static async Task<long> ClockAsync(NpgsqlDataSource primary, int shard)
    {
        try
        {
            using var timeout = new CancellationTokenSource(ProbeTimeout);
            return (await JournalStore.ReadHeadAsync(primary, shard, timeout.Token).WaitAsync(timeout.Token)).Clock;
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
        {
            return -1;
        }
    }

    // How far each reachable replica is behind the union of what the reachable replicas hold.
    private static ReplicaStatus[] WithBehind(ReplicaStatus[] replicas)
    {
        var union = replicas.Where(r => r.Vector is not null).SelectMany(r => r.Vector!)
            .GroupBy(p => p.Key).ToDictionary(g => g.Key, g => g.Max(p => p.Value));
        return [.. replicas.Select(r => r.Vector is null
            ? r with { Behind = -1 }
            : r with { Behind = union.Sum(p => Math.Max(0, p.Value - r.Vector.GetValueOrDefault(p.Key))) })];
    }

    // Seconds since the entry at a position was recorded (by the primary's clock); -1 when it cannot be read.
    private static async Task<double> AgeAsync(NpgsqlDataSource source, long position)
    {
        try
        {
            using var timeout = new CancellationTokenSource(ProbeTimeout);
            await using var command = source.CreateCommand("select extract(epoch from clock_timestamp() - recorded_at)::float8 from pr2_journal where position = $1");
            command.Parameters.Add(new() { Value = position });
            return await command.ExecuteScalarAsync(timeout.Token).WaitAsync(timeout.Token) is double age ? Math.Max(0, age) : -1;
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
        {
            return -1;
        }
    }

    // What the replica's rules have not finished: outbox messages not delivered (nor refused), and parked entries.
    private static async Task<(long Outbox, long Parked)> RuleBacklogAsync(NpgsqlDataSource source, CancellationToken cancellationToken)
    {
        await using var command = source.CreateCommand("""
            select (select count(*) from pr2_outbox where delivered_at is null and failure is null),
                   (select count(*) from pr2_dead_letter)
            """);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return (reader.GetInt64(0), reader.GetInt64(1));
    }

    private static async Task<ReplicaStatus> ReadReplicaAsync(int shard, int index, bool primary, NpgsqlDataSource source)
    {
        var endpoint = ReplicaEndpoint.Of(source.ConnectionString);
        try
        {
            // A paused server answers nothing, not even Npgsql's cancellation: stop waiting at the deadline.
            using var timeout = new CancellationTokenSource(ProbeTimeout);
            var head = await JournalStore.ReadHeadAsync(source, shard, timeout.Token).WaitAsync(timeout.Token);
            var vector = await VersionVector.ReadAsync(source, timeout.Token).WaitAsync(timeout.Token);
            var (outbox, parked) = await RuleBacklogAsync(source, timeout.Token).WaitAsync(timeout.Token);
            return new ReplicaStatus(index, endpoint, primary, true, head.Position, null, vector.ReplicaId, 0, vector.Positions, outbox, parked);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
        {
            return new ReplicaStatus(index, endpoint, primary, false, -1, e is OperationCanceledException ? $"no answer within {ProbeTimeout.TotalSeconds:0} s" : e.Message, Guid.Empty, 0, null);
        }
    }
}
