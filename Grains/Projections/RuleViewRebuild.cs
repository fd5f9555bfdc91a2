using System.Security.Cryptography;
using System.Text;
using Npgsql;
using PR2.Grains.Agents;
using PR2.Grains.Rules;

namespace PR2.Grains.Projections;

/// <summary>
/// Rebuilds the views of one rule on one replica blue/green (sql/021), for a projection named as the rule's agent
/// (<c>rule-{name}</c>). <see cref="StartAsync"/> empties the rebuild's rows and puts its mark where the rule starts; the
/// rule's own code in rebuild mode (<see cref="RuleAgent.ForRebuild"/>, <see cref="CodeRuleAgent.ForRebuild"/>) folds the
/// journal into the rows (<c>pr2_view_rebuild</c>), judging every entry as the live rule does but sending nothing and
/// parking under its own mark, never past the live rule's mark, so the live rule has made every send the rebuilt views
/// reflect. <see cref="TrySwapAsync"/>, once within one agent batch of the live mark: locks the live mark, folds the rest,
/// and in the same transaction replaces the documents the rule last wrote with the rebuilt ones and the rule's parked
/// entries up to there with the fold's. Plain row changes: a reader's snapshot sees the old documents or the new ones. A
/// rule replaced since the start (a new generation, or a new definition) starts it over; a rule removed cancels it.
/// </summary>
public static class RuleViewRebuild
{
    private const string DeleteMark = "delete from pr2_agent_mark where agent = $1 and shard = $2";
    private const string DeleteParked = "delete from pr2_dead_letter where rule = $1 and shard = $2";

    // The copy of a rule's documents may be large: once the marks are held, it is bounded by this rather than by the 1 s of
    // the waits before it (the live rule waits meanwhile; writes do not).
    private const string CopyTimeout = "set local statement_timeout = '60s'";

    /// <summary>The mark of a rebuild's fold, beside the live rule's <paramref name="liveMark"/>.</summary>
    public static string ShadowMark(string liveMark) => liveMark + "~next";

    /// <summary>
    /// The live rule's mark name, what a rebuild of it follows (its mark and, for a data rule, its definition: a rule
    /// changed in place keeps its mark), and the fold for its rebuild; null for an agent that is not a rule.
    /// </summary>
    public static (string LiveMark, string Follows, IJournalAgent Fold)? For(IJournalAgent rule) => rule switch
    {
        RuleAgent data => (data.LiveMarkName, FollowsOf(data), data.ForRebuild()),
        CodeRuleAgent code => (code.Name, code.Name, code.ForRebuild()),
        _ => null,
    };

    /// <summary>What a rebuild of a data rule follows: its mark name and a digest of its definition.</summary>
    public static string FollowsOf(RuleAgent rule) =>
        $"{rule.LiveMarkName}|{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(rule.Info.Definition)))[..16]}";

    private static string LiveMarkOf(string follows) => follows.Split('|')[0];

    /// <summary>
    /// Starts a rebuild of <paramref name="rule"/>'s views here, or finds the one in progress (unless
    /// <paramref name="restart"/>); returns its generation.
    /// </summary>
    public static async Task<long> StartAsync(NpgsqlDataSource replica, int shard, IJournalAgent rule, bool restart = false, CancellationToken cancellationToken = default)
    {
        var (liveMark, follows, fold) = For(rule) ?? throw new ArgumentException($"{rule.Name} is not a rule", nameof(rule));
        await using var connection = await replica.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var row = await RebuildRows.LockRowAsync(connection, transaction, rule.Name, cancellationToken);
        if (row is { State: "building" } building && building.Follows == follows && !restart)
        {
            return building.Generation;
        }

        await EmptyAsync(connection, transaction, shard, rule.Name, liveMark, fold, row?.Follows, cancellationToken);
        var generation = await RebuildRows.StartAsync(connection, transaction, rule.Name, follows, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return generation;
    }

    // No rows, no parked entries of the fold, and its mark where the rule starts on this replica. A fold batch in flight holds
    // its mark: waited for, also one following what the rebuild followed before (<paramref name="previous"/>), whose later
    // batches then find the row following something else and fold nothing (ReadyUpToAsync).
    private static async Task EmptyAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, int shard, string projection, string liveMark,
        IJournalAgent fold, string? previous, CancellationToken cancellationToken)
    {
        if (previous is not null && ShadowMark(LiveMarkOf(previous)) != fold.MarkName)
        {
            await RebuildRows.LockMarkAsync(connection, transaction, ShadowMark(LiveMarkOf(previous)), shard, cancellationToken);
            await ForgetFoldAsync(connection, transaction, ShadowMark(LiveMarkOf(previous)), shard, cancellationToken);
        }

        await RebuildRows.LockMarkAsync(connection, transaction, fold.MarkName, shard, cancellationToken);
        await DeleteRowsAsync(connection, transaction, projection, cancellationToken);
        await RunAsync(connection, transaction, DeleteParked, fold.MarkName, shard, cancellationToken);
        // Where the rule starts, as its agent would start now; not above the live rule's mark (an entry stamped before the
        // rule began can land here later, moving that position up): the fold skips such entries by stamp, as the rule does.
        var start = await fold.StartPositionAsync(shard, connection, transaction, cancellationToken);
        if (await RebuildRows.LockMarkAsync(connection, transaction, liveMark, shard, cancellationToken) is { } live)
        {
            start = Math.Min(start, live);
        }

        await RebuildRows.ResetMarkAsync(connection, transaction, fold.MarkName, shard, start, cancellationToken);
    }

    /// <summary>
    /// For the fold of a rebuild of <paramref name="projection"/> following <paramref name="follows"/>: the live rule's mark
    /// while that rebuild is building, so it never folds what the live rule has not applied (and sent for); 0 otherwise
    /// (nothing to fold: the rebuild ended, or follows a newer version of the rule).
    /// </summary>
    public static async Task<long> ReadyUpToAsync(string projection, string follows, int shard, NpgsqlConnection connection, NpgsqlTransaction transaction,
        CancellationToken cancellationToken) =>
        await RebuildRows.ReadAsync(connection, transaction, projection, cancellationToken) is { State: "building" } building && building.Follows == follows
            ? await RebuildRows.MarkAsync(connection, transaction, LiveMarkOf(follows), shard, cancellationToken)
            : 0;

    /// <summary>
    /// Swaps the rebuilt views in when the fold is within one agent batch of the live rule's mark (see
    /// <see cref="RecordsRebuild.TrySwapAsync"/> for the outcomes). <paramref name="rule"/> is the rule as this silo knows it
    /// now, null when it was removed (the rebuild is then canceled).
    /// </summary>
    public static async Task<(SwapOutcome Outcome, long Position, string? Busy)> TrySwapAsync(NpgsqlDataSource replica, int shard, int replicaIndex, string projection,
        IJournalAgent? rule, CancellationToken cancellationToken = default)
    {
        await using var connection = await replica.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        if (await RebuildRows.LockBuildingAsync(connection, transaction, projection, cancellationToken) is not { } building)
        {
            return (SwapOutcome.NotBuilding, 0, null);
        }

        if (rule is null || For(rule) is not var (liveMark, follows, fold))
        {
            await CancelLockedAsync(connection, transaction, projection, building.Follows, shard, "the rule was removed", cancellationToken);
            await transaction.CommitAsync(cancellationToken);
            return (SwapOutcome.NotBuilding, 0, null);
        }

        if (building.Follows != follows)
        {
            // Replaced or changed since the start: what was folded was the old definition's.
            await EmptyAsync(connection, transaction, shard, projection, liveMark, fold, building.Follows, cancellationToken);
            await using var follow = new NpgsqlCommand("update pr2_projection_rebuild set follows = $1 where projection = $2", connection, transaction);
            follow.Parameters.Add(new() { Value = follows });
            follow.Parameters.Add(new() { Value = projection });
            await follow.ExecuteNonQueryAsync(cancellationToken);
            await transaction.CommitAsync(cancellationToken);
            return (SwapOutcome.Restarted, 0, null);
        }

        // The fold's mark first (nobody else takes both), then the live rule's, held to the commit: its agent waits.
        var shadow = await RebuildRows.LockMarkAsync(connection, transaction, fold.MarkName, shard, cancellationToken);
        var live = await RebuildRows.LockMarkAsync(connection, transaction, liveMark, shard, cancellationToken);
        if (shadow is not { } from || live is not { } to || to - from > RecordsRebuild.SwapWithin || to < from)
        {
            // Not started here yet (the rule has not run on this replica, or the fold has not), or still behind.
            return (SwapOutcome.Behind, 0, null);
        }

        await RebuildRows.ExecuteAsync(connection, transaction, CopyTimeout, cancellationToken);
        var entries = await RebuildRows.ReadGapAsync(connection, shard, from, to, $"rebuild of {projection} on shard {shard} replica {replicaIndex}", cancellationToken);
        if (entries.Count > 0)
        {
            await fold.ApplyAsync(new AgentBatch(shard, replicaIndex, from), entries, connection, transaction, cancellationToken);
        }

        await using (var swap = new NpgsqlBatch(connection, transaction)
        {
            BatchCommands =
            {
                // The documents the rule wrote last give way to the rebuilt ones; a document another rule wrote since keeps
                // that rule's (later) value.
                new("delete from pr2_view where rule = $1") { Parameters = { new() { Value = projection } } },
                new("""
                    insert into pr2_view (view, key, doc, rule, position)
                    select view, key, doc, projection, position from pr2_view_rebuild where projection = $1
                    on conflict (view, key) do update set doc = excluded.doc, rule = excluded.rule, position = excluded.position, updated_at = now()
                        where pr2_view.position < excluded.position
                    """) { Parameters = { new() { Value = projection } } },
                new("delete from pr2_view_rebuild where projection = $1") { Parameters = { new() { Value = projection } } },
                // The entries parked up to here are the fold's: those it applied are parked no longer (a retry would apply
                // them twice), those it could not apply are (again).
                new("delete from pr2_dead_letter where rule = $1 and shard = $2 and position <= $3")
                {
                    Parameters = { new() { Value = liveMark }, new() { Value = shard }, new() { Value = to } },
                },
                new("update pr2_dead_letter set rule = $1 where rule = $2 and shard = $3")
                {
                    Parameters = { new() { Value = liveMark }, new() { Value = fold.MarkName }, new() { Value = shard } },
                },
                // The fold's mark goes with its rows (a fold batch after this finds nothing to fold: the row is done).
                new(DeleteMark) { Parameters = { new() { Value = fold.MarkName }, new() { Value = shard } } },
                new(AgentMarks.Revise) { Parameters = { new() { Value = liveMark }, new() { Value = shard } } },
                new(RebuildRows.Swapped) { Parameters = { new() { Value = to }, new() { Value = projection } } },
            },
        })
        {
            await swap.ExecuteNonQueryAsync(cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        return (SwapOutcome.Swapped, to, null);
    }

    /// <summary>
    /// Cancels the rebuild in progress here (the live views kept); the generation canceled, or null. Its rows go now unless a
    /// fold batch holds its mark (they then go with the next start, which empties them under that mark).
    /// </summary>
    public static async Task<long?> CancelAsync(NpgsqlDataSource replica, int shard, string projection, CancellationToken cancellationToken = default)
    {
        await using var connection = await replica.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        if (await RebuildRows.LockBuildingAsync(connection, transaction, projection, cancellationToken) is not { } building)
        {
            return null;
        }

        await CancelLockedAsync(connection, transaction, projection, building.Follows, shard, why: null, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return building.Generation;
    }

    /// <summary>Where this replica's rebuild of the rule's views stands (state "live" when none was ever started).</summary>
    public static Task<ProjectionReplicaStatus> StatusAsync(NpgsqlDataSource replica, int shard, int replicaIndex, IJournalAgent rule,
        CancellationToken cancellationToken = default)
    {
        var (liveMark, _, fold) = For(rule) ?? throw new ArgumentException($"{rule.Name} is not a rule", nameof(rule));
        return RebuildRows.StatusAsync(replica, shard, replicaIndex, rule.Name, liveMark, fold.MarkName, cancellationToken);
    }

    // Marks the row canceled (a fold's next batch then folds nothing), then drops what the fold made if its mark is free now;
    // a fold batch holding it is not waited for.
    private static async Task CancelLockedAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string projection, string? follows, int shard, string? why,
        CancellationToken cancellationToken)
    {
        await RebuildRows.MarkCanceledAsync(connection, transaction, projection, why, cancellationToken);
        if (follows is null)
        {
            return;
        }

        var fold = ShadowMark(LiveMarkOf(follows));
        await RebuildRows.DropUnlessFoldingAsync(connection, transaction, fold, shard, async () =>
        {
            await DeleteRowsAsync(connection, transaction, projection, cancellationToken);
            await ForgetFoldAsync(connection, transaction, fold, shard, cancellationToken);
        }, cancellationToken);
    }

    // A fold's mark and the entries it parked.
    private static async Task ForgetFoldAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string foldMark, int shard, CancellationToken cancellationToken)
    {
        await RunAsync(connection, transaction, DeleteMark, foldMark, shard, cancellationToken);
        await RunAsync(connection, transaction, DeleteParked, foldMark, shard, cancellationToken);
    }

    private static async Task RunAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, string name, int shard, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        command.Parameters.Add(new() { Value = name });
        command.Parameters.Add(new() { Value = shard });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task DeleteRowsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string projection, CancellationToken cancellationToken)
    {
        await using var delete = new NpgsqlCommand("delete from pr2_view_rebuild where projection = $1", connection, transaction);
        delete.Parameters.Add(new() { Value = projection });
        await delete.ExecuteNonQueryAsync(cancellationToken);
    }
}
