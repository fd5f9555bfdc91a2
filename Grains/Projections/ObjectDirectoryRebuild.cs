using Npgsql;
using PR2.Grains.Agents;
using PR2.Grains.Storage;

namespace PR2.Grains.Projections;

/// <summary>
/// Rebuilds the object directory blue/green (sql/022) in the database of shard 0's replica <c>home</c> (its primary when
/// the rebuild starts: the one the directory is read from). The directory follows many journals: every replica of every
/// shard, and of shard 0 the home replica's own. The fold (<see cref="ObjectDirectoryProjector"/> on the shadow table) runs
/// the same code over each of them under marks of its own. Its reports commute and only grow, so unlike the other rebuilds
/// it may fold past the live marks. <see cref="TrySwapAsync"/> locks the live marks, folds what the shadow still lacks of
/// them, and makes the live directory equal to the shadow in one transaction (rows that differ only). The live agents then
/// go on from their marks: entries the shadow had folded past them are applied again, changing nothing.
/// </summary>
public static class ObjectDirectoryRebuild
{
    public const string Projection = ObjectDirectoryProjector.AgentName;

    // One journal that does not answer must not hide where the rebuild stands.
    private static readonly TimeSpan HeadTimeout = TimeSpan.FromSeconds(1);

    // The live directory's marks, and the fold's (shard 0's own journal has no "@replica": see AgentMarks.Name).
    private const string LiveMarks = "(agent = 'object-directory' or agent like 'object-directory@%')";
    private const string ShadowMarks = "(agent = 'object-directory~next' or agent like 'object-directory~next@%')";

    // The copy of a large directory may take a while once the marks are held (the live agents wait meanwhile; writes do not).
    // A silo that stops answering inside it must not hold them for the hours TCP takes to notice.
    private const string CopyTimeout = "set local statement_timeout = '60s'; set local idle_in_transaction_session_timeout = '70s'";

    /// <summary>One journal the directory follows, and the names of its live and rebuild marks in the home database.</summary>
    public sealed record Followed(int Shard, int Replica, string LiveMark, string ShadowMark);

    /// <summary>The journals the directory in shard 0's replica <paramref name="home"/> follows: every replica not removed of every shard this silo knows, of shard 0 its own.</summary>
    public static IReadOnlyList<Followed> FollowedBy(ShardRegistry shards, int home)
    {
        var live = new ObjectDirectoryProjector();
        var shadow = new ObjectDirectoryProjector(ObjectDirectoryProjector.ShadowTable);
        var followed = new List<Followed>();
        foreach (var set in shards.Sets)
        {
            var shard = set.Shard;
            foreach (var replica in Enumerable.Range(0, set.Replicas.Count).Where(r => !set.IsRemoved(r) && (shard != 0 || r == home)))
            {
                followed.Add(new Followed(shard, replica, AgentMarks.Name(live, shard, replica), AgentMarks.Name(shadow, shard, replica)));
            }
        }

        return followed;
    }

    /// <summary>The fold of each followed journal into the shadow of <paramref name="home"/> (kept there even if shard 0's primary moves).</summary>
    public static IReadOnlyList<AgentRunner> Folds(ShardRegistry shards, IAgentFaultInjector faults, int home, int batchSize)
    {
        var shadow = new ObjectDirectoryProjector(ObjectDirectoryProjector.ShadowTable);
        var database = shards.Get(0).Replicas[home];
        return [.. FollowedBy(shards, home).Select(f => new AgentRunner(shadow, f.Shard, shards, faults, batchSize, f.Replica, fixedHome: database))];
    }

    /// <summary>Starts a rebuild of the directory in <paramref name="database"/>, or finds the one in progress (unless <paramref name="restart"/>); its generation.</summary>
    public static async Task<long> StartAsync(NpgsqlDataSource database, bool restart = false, CancellationToken cancellationToken = default)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        if (await RebuildRows.LockRowAsync(connection, transaction, Projection, cancellationToken) is { State: "building" } building && !restart)
        {
            return building.Generation;
        }

        // A fold batch in flight holds its mark: waited for (bounded), then its rows and marks go. A batch after this finds
        // no mark and starts the journal over.
        await ForgetFoldAsync(connection, transaction, cancellationToken);
        var generation = await RebuildRows.StartAsync(connection, transaction, Projection, follows: null, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return generation;
    }

    /// <summary>
    /// Swaps the rebuilt directory in when, with the live marks locked, the shadow lacks at most one agent batch of any
    /// followed journal (folded here from that journal). Outcomes as <see cref="RecordsRebuild.TrySwapAsync"/>; the
    /// position is the sum of the live marks it took over at.
    /// </summary>
    public static async Task<(SwapOutcome Outcome, long Position, string? Busy)> TrySwapAsync(NpgsqlDataSource database, ShardRegistry shards, int home,
        IReadOnlySet<int> leftAlone, Action<IReadOnlyCollection<int>> unknownFound, CancellationToken cancellationToken = default)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        if (await RebuildRows.LockBuildingAsync(connection, transaction, Projection, cancellationToken) is null)
        {
            return (SwapOutcome.NotBuilding, 0, null);
        }

        // The fold's marks first (nobody else takes both kinds), then the live ones, held to the commit: the live agents wait.
        // Then the live table itself: an agent's first batch on a journal creates its mark, which no lock above could see; one
        // that has written rows is waited for here (and its mark read below), one that has not writes them after the swap.
        var shadow = await LockShadowMarksAsync(connection, transaction, cancellationToken);
        await LockMarksAsync(connection, transaction, LiveMarks, cancellationToken);
        await RebuildRows.ExecuteAsync(connection, transaction, $"lock table {ObjectDirectoryProjector.LiveTable} in exclusive mode", cancellationToken);
        var live = await ReadMarksAsync(connection, transaction, LiveMarks, lockThem: false, cancellationToken);

        // Every journal the live directory took rows from must be one the fold follows, or its rows would be deleted below:
        // one this silo does not follow is named to the caller (which learns the shard, outside these locks) and the swap
        // waits a turn. A shard the caller could not learn (the directory does not list it, or this silo cannot reach it)
        // is left alone: only the rows of the shards followed are replaced.
        var followed = FollowedBy(shards, home);
        var unknown = live.Where(m => m.Value > 0 && !followed.Any(f => f.LiveMark == m.Key.Agent && f.Shard == m.Key.Shard) && !Removed(shards, m.Key))
            .Select(m => m.Key.Shard).Where(shard => !leftAlone.Contains(shard)).Distinct().ToList();
        if (unknown.Count > 0)
        {
            await transaction.RollbackAsync(cancellationToken);
            unknownFound(unknown);
            return (SwapOutcome.Behind, 0, null);
        }

        var followedShards = followed.Select(f => f.Shard).Distinct().Where(shard => !leftAlone.Contains(shard)).ToArray();

        var gaps = new List<(Followed Journal, long From, long To)>();
        foreach (var journal in followed)
        {
            if (live.GetValueOrDefault((journal.LiveMark, journal.Shard)) is var to and > 0
                && shadow.GetValueOrDefault((journal.ShadowMark, journal.Shard)) is var from && from < to)
            {
                if (to - from > RecordsRebuild.SwapWithin)
                {
                    return (SwapOutcome.Behind, 0, null);
                }

                gaps.Add((journal, from, to));
            }
        }

        await RebuildRows.ExecuteAsync(connection, transaction, CopyTimeout, cancellationToken);
        var fold = new ObjectDirectoryProjector(ObjectDirectoryProjector.ShadowTable);
        foreach (var (journal, from, to) in gaps)
        {
            await using var source = await shards.Get(journal.Shard).Replicas[journal.Replica].OpenConnectionAsync(cancellationToken);
            var entries = await RebuildRows.ReadGapAsync(source, journal.Shard, from, to,
                $"rebuild of the object directory: shard {journal.Shard} replica {journal.Replica}", cancellationToken);
            await fold.ApplyAsync(new AgentBatch(journal.Shard, journal.Replica, from), entries, connection, transaction, cancellationToken);
        }

        await using (var swap = new NpgsqlBatch(connection, transaction)
        {
            BatchCommands =
            {
                new($"""
                    delete from {ObjectDirectoryProjector.LiveTable} d
                    where d.shard = any($1) and not exists (select 1 from {ObjectDirectoryProjector.ShadowTable} n where n.shard = d.shard and n.actor_id = d.actor_id)
                    """) { Parameters = { new() { Value = followedShards } } },
                // Rows that agree keep theirs (first_position included: it is the position on whichever replica reported first).
                new($"""
                    insert into {ObjectDirectoryProjector.LiveTable} as d (shard, actor_id, actor_type, status, first_position)
                    select shard, actor_id, actor_type, status, first_position from {ObjectDirectoryProjector.ShadowTable}
                    on conflict (shard, actor_id) do update set actor_type = excluded.actor_type, status = excluded.status, updated_at = now()
                        where (d.actor_type, d.status) is distinct from (excluded.actor_type, excluded.status)
                    """),
                new($"truncate {ObjectDirectoryProjector.ShadowTable}"),
                new($"delete from pr2_agent_mark where {ShadowMarks}"),
                new(RebuildRows.Swapped) { Parameters = { new() { Value = live.Values.Sum() }, new() { Value = Projection } } },
            },
        })
        {
            await swap.ExecuteNonQueryAsync(cancellationToken);
        }

        // Last, still in the transaction: is the directory still read here? A writer opening on another replica fenced this
        // one (its epoch moved past the term it was opened with), or one is opening here now: either way not now. Whether
        // the primary moved is the caller's to ask (the next turn cancels the rebuild if it did).
        await using (var head = new NpgsqlCommand("select primary_term = epoch from pr2_writer_head", connection, transaction))
        {
            if (await head.ExecuteScalarAsync(cancellationToken) is not true)
            {
                await transaction.RollbackAsync(cancellationToken);
                return (SwapOutcome.Busy, 0, "shard 0's writer is changing (a fail-over or a move of its primary)");
            }
        }

        await transaction.CommitAsync(cancellationToken);
        return (SwapOutcome.Swapped, live.Values.Sum(), null);
    }

    /// <summary>
    /// Cancels the rebuild in progress in <paramref name="database"/> (the live directory kept, <paramref name="why"/>: null
    /// when an operator asked); the generation canceled, or null. Its rows go now unless a fold batch holds a mark (they then
    /// go with the next start).
    /// </summary>
    public static async Task<long?> CancelAsync(NpgsqlDataSource database, string? why = null, CancellationToken cancellationToken = default)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        if (await RebuildRows.LockBuildingAsync(connection, transaction, Projection, cancellationToken) is not { } building)
        {
            return null;
        }

        await RebuildRows.MarkCanceledAsync(connection, transaction, Projection, why, cancellationToken);
        await RebuildRows.DropUnlessFoldingAsync(connection, transaction, () => LockShadowMarksAsync(connection, transaction, cancellationToken),
            () => ClearFoldAsync(connection, transaction, cancellationToken), cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return building.Generation;
    }

    /// <summary>
    /// Where the directory's rebuild in shard 0's replica <paramref name="replicaIndex"/> stands, summed over the journals it
    /// follows: folded (the shadow's marks while building, else the live ones) and their heads. A journal that does not answer
    /// counts its mark as its head.
    /// </summary>
    public static async Task<ProjectionReplicaStatus> StatusAsync(ShardRegistry shards, int replicaIndex, CancellationToken cancellationToken = default)
    {
        RebuildRows.Row? row;
        Dictionary<(string, int), long> live, shadow;
        await using (var connection = await shards.Get(0).Replicas[replicaIndex].OpenConnectionAsync(cancellationToken))
        await using (var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken))
        {
            row = await RebuildRows.ReadAsync(connection, transaction, Projection, cancellationToken);
            live = await ReadMarksAsync(connection, transaction, LiveMarks, lockThem: false, cancellationToken);
            shadow = await ReadMarksAsync(connection, transaction, ShadowMarks, lockThem: false, cancellationToken);
            await transaction.CommitAsync(cancellationToken);
        }

        var followed = FollowedBy(shards, replicaIndex);
        var building = row is { State: "building" };
        var marks = followed.Select(f => live.GetValueOrDefault((f.LiveMark, f.Shard))).ToList();
        var folded = followed.Select((f, i) => building ? shadow.GetValueOrDefault((f.ShadowMark, f.Shard)) : marks[i]).ToList();
        var heads = await Task.WhenAll(followed.Select(async (f, i) =>
        {
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(HeadTimeout);
                return (await JournalStore.ReadHeadAsync(shards.Get(f.Shard).Replicas[f.Replica], f.Shard, timeout.Token).WaitAsync(timeout.Token)).Position;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                return Math.Max(marks[i], folded[i]);
            }
        }));
        return new ProjectionReplicaStatus(replicaIndex, row?.State ?? "live", row?.Generation ?? 0, folded.Sum(), heads.Sum(), marks.Sum(),
            row?.StartedAt, row?.SwappedAt, row?.SwappedPosition ?? -1, row?.Error);
    }

    // A mark of a replica removed from its shard: its journal is followed no more (what it held reached the other members
    // before it was removed), and its rows stay as the other replicas report them.
    private static bool Removed(ShardRegistry shards, (string Agent, int Shard) mark) =>
        shards.Contains(mark.Shard) && mark.Agent.LastIndexOf('@') is var at and > 0
        && int.TryParse(mark.Agent.AsSpan(at + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var replica)
        && replica < shards.Get(mark.Shard).Replicas.Count && shards.Get(mark.Shard).IsRemoved(replica);

    private static Task<Dictionary<(string Agent, int Shard), long>> LockShadowMarksAsync(NpgsqlConnection connection, NpgsqlTransaction transaction,
        CancellationToken cancellationToken) => LockMarksAsync(connection, transaction, ShadowMarks, cancellationToken);

    private static Task<Dictionary<(string Agent, int Shard), long>> LockMarksAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string which,
        CancellationToken cancellationToken) => ReadMarksAsync(connection, transaction, which, lockThem: true, cancellationToken);

    // Locked in one order, so two statements locking several never wait on each other in a cycle.
    private static async Task<Dictionary<(string Agent, int Shard), long>> ReadMarksAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string which,
        bool lockThem, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            $"select agent, shard, position from pr2_agent_mark where {which} order by agent, shard{(lockThem ? " for update" : "")}", connection, transaction);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var marks = new Dictionary<(string, int), long>();
        while (await reader.ReadAsync(cancellationToken))
        {
            marks[(reader.GetString(0), reader.GetInt32(1))] = reader.GetInt64(2);
        }

        return marks;
    }

    // The fold's rows and marks: its marks locked first (a fold batch holds its mark, then writes rows: the other order
    // would wait on each other), then the rows and the marks go.
    private static async Task ForgetFoldAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        await LockShadowMarksAsync(connection, transaction, cancellationToken);
        await ClearFoldAsync(connection, transaction, cancellationToken);
    }

    // With the fold's marks locked.
    private static Task ClearFoldAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken) =>
        RebuildRows.ExecuteAsync(connection, transaction, $"truncate {ObjectDirectoryProjector.ShadowTable}; delete from pr2_agent_mark where {ShadowMarks}", cancellationToken);
}
