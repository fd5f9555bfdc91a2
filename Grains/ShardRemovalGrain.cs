using Microsoft.Extensions.Logging;
using Npgsql;
using Orleans.Concurrency;
using PR2.Grains.Agents;
using PR2.Grains.Rules;
using PR2.Grains.Storage;

namespace PR2.Grains;

/// <summary>
/// Moves a shard's removal on (see <see cref="IShardRemovalGrain"/>): <c>sealing</c> ends when the shard's writer has
/// sealed every replica (their heads recorded), <c>draining</c> when every agent following the shard (its records view,
/// its rules, the object directory) has folded each replica's journal up to its sealed head and each replica's outbox is
/// delivered or settled, with no parked entry waiting to be retried.
/// </summary>
[Reentrant] // single-flight below: a wake-up or a caller arriving while a run is going joins that run
public sealed class ShardRemovalGrain(ShardRegistry shards, AgentCatalog catalog, RuleSet rules, TopologyFollower topology, ILogger<ShardRemovalGrain> logger)
    : Grain, IShardRemovalGrain
{
    private static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(2);

    // The run in progress: every silo's supervisor wakes this grain each round, and a seal waiting for a replica can take
    // most of a call's bound, so calls would otherwise queue behind one another (and callers time out behind them).
    private Task<ShardRemovalStatus>? _running;

    private int ShardCode => (int)this.GetPrimaryKeyLong();

    public async Task Wake()
    {
        if (_running is { IsCompleted: false })
        {
            return;
        }

        try
        {
            await Advance();
        }
        catch (Exception e) when (e is Pr2Exception or TimeoutException or OrleansException)
        {
            Log.ShardRemovalWaits(logger, ShardCode, e.Message);
        }
    }

    public Task<ShardRemovalStatus> Advance() => _running is { IsCompleted: false } running ? running : _running = AdvanceOnceAsync();

    private async Task<ShardRemovalStatus> AdvanceOnceAsync()
    {
        var directory = GrainFactory.GetGrain<IDirectoryGrain>(0);
        var removal = await DirectoryGrain.RemovalOfAsync(GrainFactory, ShardCode)
            ?? throw new Pr2Exception(ErrorCode.BadMessage, $"shard {ShardCode} is not being removed");

        if (removal.State == ShardRemoval.Sealing)
        {
            IReadOnlyDictionary<int, long> heads;
            try
            {
                heads = await GrainFactory.GetGrain<IShardWriterGrain>(ShardCode).Seal();
            }
            catch (Pr2Exception e) when (e.IsRetriable)
            {
                return new ShardRemovalStatus(ShardCode, removal, [e.Message]);
            }

            removal = (await directory.AdvanceShardRemoval(ShardCode, ShardRemoval.Draining, heads)).Removal!;
        }

        if (removal.State == ShardRemoval.Draining)
        {
            if (await CannotServeAsync() is { } problem)
            {
                // Placed on a silo that cannot read the shard (a key it lacks): the next wake-up may place it elsewhere.
                DeactivateOnIdle();
                return new ShardRemovalStatus(ShardCode, removal, [problem]);
            }

            // The rules as shard 0 lists them now, not as of this silo's last round: one added on another silo just now counts.
            try
            {
                await rules.RefreshAsync(GrainFactory);
            }
            catch (Exception e) when (e is Pr2Exception or TimeoutException or OrleansException)
            {
                return new ShardRemovalStatus(ShardCode, removal, [$"the rules, from shard 0 ({e.Message})"]);
            }

            if (rules.NotLoaded.Count > 0)
            {
                // Its progress on the shard cannot be judged here: another silo may load it (the next wake-up may land there).
                DeactivateOnIdle();
                return new ShardRemovalStatus(ShardCode, removal,
                    [.. rules.NotLoaded.Select(r => $"rule {r.Key}, which this silo cannot load ({r.Value}): fix or delete it")]);
            }

            var (waiting, unreadable) = await UndrainedAsync(removal.SealedHeads!);
            if (waiting.Count > 0)
            {
                if (unreadable)
                {
                    DeactivateOnIdle(); // perhaps only this silo cannot reach that server: the next wake-up may land elsewhere
                }

                return new ShardRemovalStatus(ShardCode, removal, waiting);
            }

            removal = (await directory.AdvanceShardRemoval(ShardCode, ShardRemoval.Releasing, null)).Removal!;
        }

        if (removal.State == ShardRemoval.Releasing)
        {
            var holding = await SilosHoldingAsync();
            if (holding.Count > 0)
            {
                return new ShardRemovalStatus(ShardCode, removal, holding);
            }

            var purge = await PurgeObjectDirectoryAsync();
            if (purge is not null)
            {
                return new ShardRemovalStatus(ShardCode, removal, [purge]);
            }

            removal = (await directory.AdvanceShardRemoval(ShardCode, ShardRemoval.Removed, null)).Removal!;
        }

        return new ShardRemovalStatus(ShardCode, removal, []);
    }

    // Why this silo cannot read the shard's databases (to check what they drained), or null when it can.
    private async Task<string?> CannotServeAsync()
    {
        try
        {
            await topology.KnowsAsync(ShardCode);
            return shards.Contains(ShardCode) ? null : $"a silo that serves shard {ShardCode} (this one does not know it)";
        }
        catch (Pr2Exception e) when (e.Code is ErrorCode.ShardUnavailable or ErrorCode.UnknownShard)
        {
            return $"a silo that can read shard {ShardCode} ({e.Message})";
        }
    }

    // Each silo reports every directory round the removed shards it has released (dropped, and refuses to join again):
    // every active silo must list this one. Not merely "does not serve it": a silo that never joined it may be joining now.
    private async Task<List<string>> SilosHoldingAsync()
    {
        var active = await GrainFactory.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true);
        var reports = await GrainFactory.GetGrain<IStreamReadersGrain>(0).Released();
        return [.. active.Keys.Select(silo => silo.ToString()).Order(StringComparer.Ordinal)
            .Where(silo => !reports.TryGetValue(silo, out var released) || !released.Contains(ShardCode))
            .Select(silo => $"silo {silo} to release the shard (it follows the directory every few seconds)")];
    }

    // The object directory's rows, rebuild rows and marks of the shard, on every replica of shard 0 (each was fed while it
    // was the primary); null when done, else what did not answer.
    private async Task<string?> PurgeObjectDirectoryAsync()
    {
        var control = shards.Get(0);
        foreach (var replica in control.Live)
        {
            try
            {
                using var timeout = new CancellationTokenSource(ReadTimeout * 5);
                await using var batch = new NpgsqlBatch
                {
                    BatchCommands =
                    {
                        new("delete from pr2_object_directory where shard = $1") { Parameters = { new() { Value = ShardCode } } },
                        new("delete from pr2_object_directory_rebuild where shard = $1") { Parameters = { new() { Value = ShardCode } } },
                        new("delete from pr2_agent_mark where shard = $1") { Parameters = { new() { Value = ShardCode } } },
                    },
                };
                await using var connection = await control.Replicas[replica].OpenConnectionAsync(timeout.Token);
                await using var transaction = await connection.BeginTransactionAsync(timeout.Token);
                batch.Connection = connection;
                batch.Transaction = transaction;
                await batch.ExecuteNonQueryAsync(timeout.Token).WaitAsync(timeout.Token);
                await transaction.CommitAsync(timeout.Token);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
            {
                return $"replica {replica} of shard 0, to forget the shard's objects ({DatabaseFailure.Describe(e)})";
            }
        }

        return null;
    }

    // What the sealed journal still waits for, per replica: agents behind its head, rule messages not delivered, parked
    // entries marked for retry. Sends from the shard's rules to itself are refused as removed, which settles them.
    // Unreadable: some of it could not be read from here.
    private async Task<(List<string> Waiting, bool Unreadable)> UndrainedAsync(IReadOnlyDictionary<int, long> heads)
    {
        var waiting = new List<string>();
        var unreadable = false;
        var set = shards.Get(ShardCode);
        foreach (var (replica, head) in heads.OrderBy(h => h.Key))
        {
            foreach (var agent in catalog.Agents.Where(a => a.Follows(ShardCode)).OrderBy(a => a.Name, StringComparer.Ordinal))
            {
                var mark = await ReadAsync(AgentMarks.Home(agent, shards, ShardCode, replica),
                    "select position from pr2_agent_mark where agent = $1 and shard = $2", AgentMarks.Name(agent, ShardCode, replica), ShardCode);
                if (mark is null)
                {
                    unreadable = true;
                    waiting.Add($"{agent.Name} on replica {replica}: its mark could not be read");
                }
                else if (mark < head)
                {
                    waiting.Add($"{agent.Name} on replica {replica}: at {mark} of {head}");
                }
            }

            var undelivered = await ReadAsync(set.Replicas[replica], "select count(*) from pr2_outbox where delivered_at is null and failure is null");
            unreadable |= undelivered is null;
            if (undelivered is not 0)
            {
                waiting.Add(undelivered is null
                    ? $"the outbox of replica {replica} could not be read"
                    : $"the outbox of replica {replica}: {undelivered} rule message(s) not yet delivered");
            }

            var parked = await ReadAsync(set.Replicas[replica], "select count(*) from pr2_dead_letter where shard = $1 and retry", ShardCode);
            unreadable |= parked is null;
            if (parked is not 0)
            {
                waiting.Add(parked is null
                    ? $"the parked entries of replica {replica} could not be read"
                    : $"replica {replica}: {parked} parked rule entr(ies) marked for retry");
            }
        }

        return (waiting, unreadable);
    }

    // A count or a position; 0 when there is no row; null when the database did not answer.
    private static async Task<long?> ReadAsync(NpgsqlDataSource database, string sql, params object[] parameters)
    {
        try
        {
            using var timeout = new CancellationTokenSource(ReadTimeout);
            await using var command = database.CreateCommand(sql);
            foreach (var parameter in parameters)
            {
                command.Parameters.Add(new NpgsqlParameter { Value = parameter });
            }

            return await command.ExecuteScalarAsync(timeout.Token).WaitAsync(timeout.Token) is long value ? value : 0;
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
        {
            return null;
        }
    }
}
