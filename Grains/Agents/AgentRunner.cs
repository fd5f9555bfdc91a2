using Npgsql;
using PR2.Grains.Storage;
using PR2.Grains.Writing;

namespace PR2.Grains.Agents;

/// <summary>
/// Moves one agent along one shard's journal, batch by batch. Each batch is one transaction on the
/// agent's home database: lock the mark row, read the entries after it, apply them, then advance the
/// mark with a compare-and-set on the value read. A crash at any point rolls effects and mark back
/// together; a second runner for the same (agent, shard) waits on the mark lock and then finds the mark
/// moved, so it cannot apply a batch twice.
/// </summary>
/// <remarks><paramref name="fixedHome"/>: the database of the effects and mark when it must not follow the home shard's primary
/// (a rebuild of the object directory stays on the replica it started on).</remarks>
public sealed class AgentRunner(IJournalAgent agent, int sourceShard, ShardRegistry shards, IAgentFaultInjector faults, int batchSize = AgentRunner.DefaultBatchSize, int replica = 0,
    RecentEntries? recent = null, NpgsqlDataSource? fixedHome = null)
{
    /// <summary>Most entries one batch applies, unless the runner is given another size.</summary>
    public const int DefaultBatchSize = 500;

    public string Agent => agent.Name;

    public int SourceShard => sourceShard;

    public int Replica => replica;

    /// <summary>The database holding this runner's effects and mark.</summary>
    public NpgsqlDataSource Home => fixedHome ?? AgentMarks.Home(agent, shards, sourceShard, replica);

    /// <summary>The key of this runner's mark in <see cref="Home"/>.</summary>
    public string MarkName => AgentMarks.Name(agent, sourceShard, replica);

    /// <summary>Applies at most one batch; returns how many entries it applied (0 when caught up).</summary>
    public async Task<int> RunOnceAsync(CancellationToken cancellationToken = default) => (await RunBatchAsync(long.MaxValue, cancellationToken)).Applied;

    /// <summary>Applies batches until one finds nothing more to apply after the mark; returns the total applied.</summary>
    public async Task<long> CatchUpAsync(CancellationToken cancellationToken = default)
    {
        long total = 0;
        while (true)
        {
            var (applied, more) = await RunBatchAsync(long.MaxValue, cancellationToken);
            total += applied;
            if (!more)
            {
                return total;
            }
        }
    }

    // Applies at most one batch of entries up to position upTo. More: the batch was cut at its size limit, so
    // entries may be waiting after it (a batch that took everything there was needs no empty one after it).
    private async Task<(int Applied, bool More)> RunBatchAsync(long upTo, CancellationToken cancellationToken)
    {
        var source = agent.PerReplica ? shards.Get(sourceShard).Replicas[replica] : shards.Get(sourceShard).Primary;
        var home = Home;
        await using var connection = await home.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);

        var (mark, revision, created) = await LockMarkAsync(connection, transaction, cancellationToken);
        var batch = new AgentBatch(sourceShard, replica, mark, revision);
        var extra = await agent.BeforeBatchAsync(batch, connection, transaction, cancellationToken);
        var ready = await agent.ReadyUpToAsync(sourceShard, connection, transaction, cancellationToken);
        var bound = Math.Min(ready, upTo);
        var limit = (int)Math.Clamp(bound - mark, 0, batchSize);
        // Entries a writer on this silo just committed come from memory (contiguous from mark + 1, as read below). A
        // batch cut at its size goes on to the end of the commit it stopped in (up to the bound), so that an agent's mark,
        // and what reads at it see, never stands inside a commit: an atomic batch is folded whole or not at all.
        var (end, entries) = limit == 0 ? (mark, [])
            : agent.ReadsRecordedAt || recent?.TryRead(source, mark, limit, bound) is not { } committed
                ? await ReadAsync(source, home, connection, mark, limit, bound, cancellationToken)
                : (committed[^1].Position, agent.ReadsModifies ? committed : [.. committed.Where(e => e.Kind != MessageKind.Modify)]);
        if (end == mark)
        {
            if (extra > 0)
            {
                await using var revise = new NpgsqlCommand(AgentMarks.Revise, connection, transaction);
                revise.Parameters.Add(new() { Value = MarkName });
                revise.Parameters.Add(new() { Value = sourceShard });
                await revise.ExecuteNonQueryAsync(cancellationToken);
                await transaction.CommitAsync(cancellationToken);
                agent.Committed(batch, mark);
            }
            else if (created)
            {
                // Kept though nothing was applied: the mark says where the agent stands (a rule started "now" on an idle
                // shard is at its head, and a shard's removal drains once every mark reaches it).
                await transaction.CommitAsync(cancellationToken);
            }

            return (extra, false);
        }

        try
        {
            await agent.ApplyAsync(batch, entries, connection, transaction, cancellationToken);
        }
        catch (AgentStoppedException stop) when (stop.Position > mark + 1 && stop.Position <= end)
        {
            // Keep what came before the entry it stopped at: roll back and apply only those.
            await transaction.RollbackAsync(cancellationToken);
            var (applied, _) = await RunBatchAsync(stop.Position - 1, cancellationToken);
            return (applied, false);
        }

        faults.AfterEffects(agent.Name, sourceShard, entries);

        await using var advance = new NpgsqlCommand(AgentMarks.Advance, connection, transaction);
        advance.Parameters.Add(new() { Value = end });
        advance.Parameters.Add(new() { Value = MarkName });
        advance.Parameters.Add(new() { Value = sourceShard });
        advance.Parameters.Add(new() { Value = mark });
        if (await advance.ExecuteNonQueryAsync(cancellationToken) != 1)
        {
            return (0, false);
        }

        await transaction.CommitAsync(cancellationToken);
        agent.Committed(batch, end);
        return ((int)(end - mark) + extra, end - mark >= limit || extra > 0);
    }

    // The entries after the mark from the journal: all of them, or only inserts and cancels up to the journal's head.
    private async Task<(long End, IReadOnlyList<JournalEntry> Entries)> ReadAsync(NpgsqlDataSource source, NpgsqlDataSource home,
        NpgsqlConnection connection, long mark, int limit, long bound, CancellationToken cancellationToken) =>
        agent.ReadsModifies
            ? await ReadAllAsync(source, home, connection, mark, limit, bound, cancellationToken)
            : await JournalStore.ReadInsertsAndCancelsAsync(source, sourceShard, mark, mark + limit, cancellationToken, commitBound: bound);

    // Every entry after the mark (up to limit), checked to be contiguous; the batch ends at the last one read.
    private async Task<(long End, IReadOnlyList<JournalEntry> Entries)> ReadAllAsync(NpgsqlDataSource source, NpgsqlDataSource home,
        NpgsqlConnection connection, long mark, int limit, long bound, CancellationToken cancellationToken)
    {
        var local = ReferenceEquals(source, home);
        var entries = local
            ? await JournalStore.ReadAsync(connection, sourceShard, mark, limit, agent.ReadsBodies, cancellationToken)
            : await JournalStore.ReadAsync(source, sourceShard, mark, limit, agent.ReadsBodies, cancellationToken);
        if (entries.Count == limit && entries[^1].Position < bound)
        {
            var rest = local
                ? await JournalStore.ReadRestOfCommitAsync(connection, sourceShard, entries[^1].Position, bound, agent.ReadsBodies, cancellationToken)
                : await JournalStore.ReadRestOfCommitAsync(source, sourceShard, entries[^1].Position, bound, agent.ReadsBodies, cancellationToken);
            entries = rest.Count == 0 ? entries : [.. entries, .. rest];
        }

        if (entries.Count > 0 && (entries[0].Position != mark + 1 || entries[^1].Position != mark + entries.Count))
        {
            // Never skip: positions are contiguous in every journal, so a hole means something is badly wrong.
            throw new InvalidOperationException(
                $"agent {agent.Name} on shard {sourceShard}: journal positions after {mark} are not contiguous ({entries[0].Position}..{entries[^1].Position} for {entries.Count} entries)");
        }

        return (entries.Count == 0 ? mark : entries[^1].Position, entries);
    }

    // Created: the row was made by this transaction.
    private async Task<(long Position, long Revision, bool Created)> LockMarkAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        // Locks the mark row; on first use creates it at the agent's start position (asked only then: it may cost a scan).
        if (await LockedMarkAsync(connection, transaction, cancellationToken) is { } mark)
        {
            return (mark.Position, mark.Revision, false);
        }

        await using var create = new NpgsqlCommand(
            "insert into pr2_agent_mark (agent, shard, position) values ($1, $2, $3) on conflict (agent, shard) do nothing", connection, transaction);
        create.Parameters.Add(new() { Value = MarkName });
        create.Parameters.Add(new() { Value = sourceShard });
        create.Parameters.Add(new() { Value = await agent.StartPositionAsync(sourceShard, connection, transaction, cancellationToken) });
        await create.ExecuteNonQueryAsync(cancellationToken);
        var made = await LockedMarkAsync(connection, transaction, cancellationToken) ?? throw new InvalidOperationException($"the mark of {MarkName} on shard {sourceShard} vanished");
        return (made.Position, made.Revision, true);
    }

    private async Task<(long Position, long Revision)?> LockedMarkAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("select position, revision from pr2_agent_mark where agent = $1 and shard = $2 for update", connection, transaction);
        command.Parameters.Add(new() { Value = MarkName });
        command.Parameters.Add(new() { Value = sourceShard });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? (reader.GetInt64(0), reader.GetInt64(1)) : null;
    }
}
