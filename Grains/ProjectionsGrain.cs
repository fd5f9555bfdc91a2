using Npgsql;
using Orleans.Concurrency;
using PR2.Grains.Agents;
using PR2.Grains.Projections;
using PR2.Grains.Storage;

namespace PR2.Grains;

/// <summary>
/// One shard's projections for <c>pr2 projections</c>: lists what folds its journal, starts rebuilds on its replicas (each run
/// by that replica's <see cref="ProjectionRebuildGrain"/>) and reports where they stand. The object directory, which every
/// shard feeds, is rebuilt as a whole through shard 0, in its primary's database.
/// </summary>
[StatelessWorker]
public sealed class ProjectionsGrain(ShardRegistry shards, AgentCatalog catalog, Rules.RuleSet rules, TopologyFollower topology) : Grain, IProjectionsGrain
{
    private static readonly TimeSpan ReplicaTimeout = TimeSpan.FromSeconds(3);

    private int ShardCode => (int)this.GetPrimaryKeyLong();

    public async Task<IReadOnlyList<ProjectionStatus>> List()
    {
        var set = await SetAsync();
        var list = new List<ProjectionStatus> { await Status(RecordsRebuild.Projection) };
        foreach (var agent in catalog.Agents.Where(a => a.Name != RecordsProjector.AgentName && a.Follows(ShardCode)).OrderBy(a => a.Name, StringComparer.Ordinal))
        {
            list.Add(RuleViewRebuild.For(agent) is not null || IsDirectoryHere(agent.Name) ? await RebuildStatusAsync(agent.Name, agent, set) : await AgentStatusAsync(agent, set));
        }

        return list;
    }

    public async Task<ProjectionStatus> Rebuild(string projection, bool restart = false)
    {
        // The others go on where one fails; running the command again starts these and finds the rest in progress. The object
        // directory is rebuilt where it is read: shard 0's primary (a caller waits for that replica alone).
        var started = await OnEveryReplicaAsync(projection, "start", grain => grain.Start(restart),
            only: IsDirectoryHere(projection) ? await CurrentPrimary.AskAsync(GrainFactory, await SetAsync(), ReplicaTimeout) : null);

        // Each replica's entry carries the generation its start answered, also where reading it back failed just now: a
        // caller waits for that generation (or a later one) to be swapped in.
        var status = await Status(projection);
        return status with
        {
            Replicas = [.. status.Replicas.Where(r => started.ContainsKey(r.Replica) || !IsDirectoryHere(projection))
                .Select(r => started.TryGetValue(r.Replica, out var generation) ? r with { Generation = generation } : r)],
        };
    }

    public async Task<ProjectionStatus> Cancel(string projection)
    {
        // The ones canceled stay canceled where one fails; running the command again cancels the rest.
        await OnEveryReplicaAsync(projection, "be canceled", grain => grain.Cancel());
        return await Status(projection);
    }

    // Asks each replica's rebuild grain in turn; if any did not answer, says which (retriable) once all were asked.
    private async Task<Dictionary<int, T>> OnEveryReplicaAsync<T>(string projection, string what, Func<IProjectionRebuildGrain, Task<T>> call, int? only = null)
    {
        var set = await SetAsync();
        await CheckRebuildableAsync(projection);
        var failures = new List<string>();
        var answers = new Dictionary<int, T>();
        foreach (var replica in ReplicasOf(set).Where(r => only is null || r == only))
        {
            try
            {
                answers[replica] = await call(GrainFactory.GetGrain<IProjectionRebuildGrain>(AgentCatalog.Key(projection, ShardCode, replica))).WaitAsync(ReplicaTimeout);
            }
            catch (Pr2Exception e) when (e.IsRetriable)
            {
                failures.Add(e.Message);
            }
            catch (Exception e) when (e is not Pr2Exception)
            {
                failures.Add($"replica {replica}: {DatabaseFailure.Describe(e)}");
            }
        }

        return failures.Count == 0
            ? answers
            : throw new Pr2Exception(ErrorCode.ShardUnavailable,
                $"the rebuild of {projection} on shard {ShardCode} could not {what} on every replica ({string.Join("; ", failures)}); retry");
    }

    public async Task<ProjectionStatus> Status(string projection)
    {
        // A caller following a rebuild takes a replica missing here for one removed: this silo must know any added since.
        try
        {
            await topology.RefreshShardAsync(ShardCode);
        }
        catch (Exception e) when (e is Pr2Exception or OrleansException or TimeoutException)
        {
            // The directory did not answer: the replicas this silo knows.
        }

        var set = await SetAsync();
        if (projection == RecordsRebuild.Projection)
        {
            return await RebuildStatusAsync(projection, rule: null, set);
        }

        var agent = await FindAsync(projection) ?? throw NoProjection(projection);
        return RuleViewRebuild.For(agent) is not null || IsDirectoryHere(projection) ? await RebuildStatusAsync(projection, agent, set) : await AgentStatusAsync(agent, set);
    }

    // A rebuildable projection (the records view, the rule's views, or in shard 0 the object directory): each replica's rebuild
    // state and marks.
    private async Task<ProjectionStatus> RebuildStatusAsync(string projection, IJournalAgent? rule, ShardReplicaSet set)
    {
        var replicas = await Task.WhenAll(ReplicasOf(set).Select(async replica =>
        {
            try
            {
                using var timeout = new CancellationTokenSource(ReplicaTimeout);
                var status = rule is null ? RecordsRebuild.StatusAsync(set.Replicas[replica], ShardCode, replica, timeout.Token)
                    : IsDirectoryHere(projection) ? ObjectDirectoryRebuild.StatusAsync(shards, replica, timeout.Token)
                    : RuleViewRebuild.StatusAsync(set.Replicas[replica], ShardCode, replica, rule, timeout.Token);
                return await status.WaitAsync(timeout.Token);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
            {
                return Unreachable(replica, e);
            }
        }));
        return new ProjectionStatus(projection, ShardCode, Rebuildable: true, replicas);
    }

    // The agent following this shard by that name, asking the directory for rules once when this silo does not know it.
    private async Task<IJournalAgent?> FindAsync(string projection)
    {
        if (catalog.Find(projection) is not { } agent)
        {
            await rules.RefreshAsync(GrainFactory);
            agent = catalog.Find(projection);
        }

        return agent is not null && agent.Follows(ShardCode) ? agent : null;
    }

    private Pr2Exception NoProjection(string projection) =>
        new(ErrorCode.BadMessage, $"shard {ShardCode} has no projection '{projection}' (pr2 projections list {ShardCode} shows them)");

    private async Task<ShardReplicaSet> SetAsync()
    {
        if (!await topology.KnowsAsync(ShardCode))
        {
            throw new Pr2Exception(ErrorCode.UnknownShard, $"shard {ShardCode} is not in the directory");
        }

        return shards.Get(ShardCode);
    }

    // Every replica not removed: joining ones keep their own records view too, and it is theirs to serve once admitted.
    private static IEnumerable<int> ReplicasOf(ShardReplicaSet set) =>
        Enumerable.Range(0, set.Replicas.Count).Where(replica => !set.IsRemoved(replica));

    private async Task CheckRebuildableAsync(string projection)
    {
        if (projection == RecordsRebuild.Projection)
        {
            return;
        }

        var agent = await FindAsync(projection) ?? throw NoProjection(projection);
        if (projection == ObjectDirectoryRebuild.Projection && !IsDirectoryHere(projection))
        {
            throw new Pr2Exception(ErrorCode.BadMessage,
                $"the object directory is fed by every shard and kept in shard 0: it is rebuilt as a whole, through shard 0 (pr2 projections rebuild 0 {projection})");
        }

        if (RuleViewRebuild.For(agent) is null && !IsDirectoryHere(projection))
        {
            throw new Pr2Exception(ErrorCode.BadMessage,
                $"'{projection}' cannot be rebuilt yet: the records view, rules' views and (in shard 0) the object directory can (pr2 projections list {ShardCode} says which)");
        }
    }

    // The object directory's rebuild is shard 0's: in the other shards it is listed as what follows their journals.
    private bool IsDirectoryHere(string projection) => projection == ObjectDirectoryRebuild.Projection && ShardCode == 0;

    // An agent's projection that this shard does not rebuild (the object directory outside shard 0): each replica's mark
    // against its head.
    private async Task<ProjectionStatus> AgentStatusAsync(IJournalAgent agent, ShardReplicaSet set) =>
        new(agent.Name, ShardCode, Rebuildable: false, await Task.WhenAll(ReplicasOf(set).Select(replica => MarkAsync(agent, set, replica))));

    private async Task<ProjectionReplicaStatus> MarkAsync(IJournalAgent agent, ShardReplicaSet set, int replica)
    {
        try
        {
            using var timeout = new CancellationTokenSource(ReplicaTimeout);
            var mark = await AgentMarks.ReadAsync(AgentMarks.Home(agent, shards, ShardCode, replica), AgentMarks.Name(agent, ShardCode, replica), ShardCode, timeout.Token)
                .WaitAsync(timeout.Token);
            var head = await JournalStore.ReadHeadAsync(set.Replicas[replica], ShardCode, timeout.Token).WaitAsync(timeout.Token);
            return new ProjectionReplicaStatus(replica, "live", 0, mark, head.Position, mark, null, null, -1, null);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
        {
            return Unreachable(replica, e);
        }
    }

    private static ProjectionReplicaStatus Unreachable(int replica, Exception e) =>
        new(replica, "unreachable", 0, -1, -1, -1, null, null, -1, DatabaseFailure.Describe(e));
}
