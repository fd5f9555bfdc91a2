using Npgsql;
using PR2.Grains.Agents;
using PR2.Grains.Rules;
using PR2.Grains.Storage;

namespace PR2.Grains.Projections;

/// <summary>
/// Rebuilds the views of one rule on one replica blue/green (sql/021), for a projection named as the rule's agent
/// (<c>rule-{name}</c>). <see cref="StartAsync"/> empties the rebuild's rows and puts its mark where the rule starts; the
/// rule's own code in rebuild mode (<see cref="RuleAgent.ForRebuild"/>, <see cref="CodeRuleAgent.ForRebuild"/>) folds the
/// journal into the rows (<c>pr2_view_rebuild</c>), judging every entry as the live rule does but sending and parking
/// nothing, and never past the live rule's mark, so the live rule has made every send the rebuilt views reflect.
/// <see cref="TrySwapAsync"/>, once within one agent batch of the live mark: locks the live mark, folds the rest, and in
/// the same transaction replaces the documents the rule last wrote with the rebuilt ones. Plain row changes: a reader's
/// snapshot sees the old documents or the new ones. A rule replaced since the start (a new generation) starts it over; a
/// rule removed cancels it.
/// </summary>
public static class RuleViewRebuild
{
    private const string DeleteMark = "delete from pr2_agent_mark where agent = $1 and shard = $2";

    /// <summary>The mark of a rebuild's fold, beside the live rule's <paramref name="liveMark"/>.</summary>
    public static string ShadowMark(string liveMark) => liveMark + "~next";

    /// <summary>The live rule's mark name and the fold for its rebuild; null for an agent that is not a rule.</summary>
    public static (string LiveMark, IJournalAgent Fold)? For(IJournalAgent rule) => rule switch
    {
        RuleAgent data => (data.LiveMarkName, data.ForRebuild()),
        CodeRuleAgent code => (code.Name, code.ForRebuild()),
        _ => null,
    };

    /// <summary>
    /// Starts a rebuild of <paramref name="rule"/>'s views here, or finds the one in progress (unless
    /// <paramref name="restart"/>); returns its generation.
    /// </summary>
    public static async Task<long> StartAsync(NpgsqlDataSource replica, int shard, IJournalAgent rule, bool restart = false, CancellationToken cancellationToken = default)
    {
        var (liveMark, fold) = For(rule) ?? throw new ArgumentException($"{rule.Name} is not a rule", nameof(rule));
        await using var connection = await replica.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await RebuildRows.ExecuteAsync(connection, transaction, RebuildRows.LockTimeout, cancellationToken);
        await RebuildRows.LockAsync(connection, transaction, cancellationToken);
        var building = await RebuildRows.ReadAsync(connection, transaction, rule.Name, cancellationToken) is { State: "building" } row ? row : null;
        if (building is not null && building.Follows == liveMark && !restart)
        {
            return building.Generation;
        }

        await EmptyAsync(connection, transaction, shard, rule.Name, liveMark, fold, building?.Follows, cancellationToken);
        var generation = await RebuildRows.StartAsync(connection, transaction, rule.Name, liveMark, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return generation;
    }

    // No rows, and the fold's mark where the rule starts on this replica. A fold batch in flight holds its mark: waited for,
    // also one of the rule's previous version (<paramref name="previous"/>, the live mark it followed), whose later batches
    // then find the row following another mark and fold nothing (ReadyUpToAsync).
    private static async Task EmptyAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, int shard, string projection, string liveMark,
        IJournalAgent fold, string? previous, CancellationToken cancellationToken)
    {
        if (previous is not null && ShadowMark(previous) != fold.MarkName)
        {
            await RebuildRows.LockMarkAsync(connection, transaction, ShadowMark(previous), shard, cancellationToken);
        }

        await RebuildRows.LockMarkAsync(connection, transaction, fold.MarkName, shard, cancellationToken);
        await DeleteRowsAsync(connection, transaction, projection, cancellationToken);
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
    /// For the fold of a rebuild of <paramref name="projection"/>: the live rule's mark while the rebuild is building, so
    /// it never folds what the live rule has not applied (and sent for); its own mark otherwise (nothing to fold).
    /// </summary>
    public static async Task<long> ReadyUpToAsync(string projection, string liveMark, int shard, NpgsqlConnection connection, NpgsqlTransaction transaction,
        CancellationToken cancellationToken) =>
        await RebuildRows.ReadAsync(connection, transaction, projection, cancellationToken) is { State: "building" } building && building.Follows == liveMark
            ? await RebuildRows.MarkAsync(connection, transaction, liveMark, shard, cancellationToken)
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
        await RebuildRows.ExecuteAsync(connection, transaction, RebuildRows.LockTimeout, cancellationToken);
        await RebuildRows.LockAsync(connection, transaction, cancellationToken);
        if (await RebuildRows.ReadAsync(connection, transaction, projection, cancellationToken) is not { State: "building" } building)
        {
            return (SwapOutcome.NotBuilding, 0, null);
        }

        if (rule is null || For(rule) is not var (liveMark, fold))
        {
            await CancelLockedAsync(connection, transaction, projection, building.Follows, shard, "the rule was removed", cancellationToken);
            await transaction.CommitAsync(cancellationToken);
            return (SwapOutcome.NotBuilding, 0, null);
        }

        if (building.Follows != liveMark)
        {
            // Replaced (a new generation, with its own mark and start): what was folded was the old definition's.
            await EmptyAsync(connection, transaction, shard, projection, liveMark, fold, building.Follows, cancellationToken);
            await using var follow = new NpgsqlCommand("update pr2_projection_rebuild set follows = $1 where projection = $2", connection, transaction);
            follow.Parameters.Add(new() { Value = liveMark });
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

        if (to > from)
        {
            var entries = await JournalStore.ReadAsync(connection, shard, from, (int)(to - from), withBodies: true, cancellationToken);
            if (entries.Count != to - from || entries[0].Position != from + 1 || entries[^1].Position != to)
            {
                throw new InvalidOperationException($"rebuild of {projection} on shard {shard} replica {replicaIndex}: the journal does not hold positions {from + 1}..{to} contiguously");
            }

            await fold.ApplyAsync(new AgentBatch(shard, replicaIndex, from), entries, connection, transaction, cancellationToken);
        }

        await using (var swap = new NpgsqlBatch(connection, transaction)
        {
            BatchCommands =
            {
                // The documents the rule wrote last give way to the rebuilt ones (a document another rule wrote last is kept,
                // unless the rebuild wrote it too).
                new("delete from pr2_view where rule = $1") { Parameters = { new() { Value = projection } } },
                new("""
                    insert into pr2_view (view, key, doc, rule, position)
                    select view, key, doc, projection, position from pr2_view_rebuild where projection = $1
                    on conflict (view, key) do update set doc = excluded.doc, rule = excluded.rule, position = excluded.position, updated_at = now()
                    """) { Parameters = { new() { Value = projection } } },
                new("delete from pr2_view_rebuild where projection = $1") { Parameters = { new() { Value = projection } } },
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

    /// <summary>Cancels the rebuild in progress here (its rows dropped, the live views kept); the generation canceled, or null.</summary>
    public static async Task<long?> CancelAsync(NpgsqlDataSource replica, int shard, string projection, CancellationToken cancellationToken = default)
    {
        await using var connection = await replica.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await RebuildRows.ExecuteAsync(connection, transaction, RebuildRows.LockTimeout, cancellationToken);
        await RebuildRows.LockAsync(connection, transaction, cancellationToken);
        if (await RebuildRows.ReadAsync(connection, transaction, projection, cancellationToken) is not { State: "building" } building)
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
        var (liveMark, fold) = For(rule) ?? throw new ArgumentException($"{rule.Name} is not a rule", nameof(rule));
        return RebuildRows.StatusAsync(replica, shard, replicaIndex, rule.Name, liveMark, fold.MarkName, cancellationToken);
    }

    private static async Task CancelLockedAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string projection, string? follows, int shard, string? why,
        CancellationToken cancellationToken)
    {
        if (follows is not null)
        {
            await RebuildRows.LockMarkAsync(connection, transaction, ShadowMark(follows), shard, cancellationToken);
            await using var mark = new NpgsqlCommand(DeleteMark, connection, transaction);
            mark.Parameters.Add(new() { Value = ShadowMark(follows) });
            mark.Parameters.Add(new() { Value = shard });
            await mark.ExecuteNonQueryAsync(cancellationToken);
        }

        await DeleteRowsAsync(connection, transaction, projection, cancellationToken);
        await using var cancel = new NpgsqlCommand(RebuildRows.Canceled, connection, transaction);
        cancel.Parameters.Add(new() { Value = projection });
        cancel.Parameters.Add(new() { Value = (object?)why ?? DBNull.Value });
        await cancel.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task DeleteRowsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string projection, CancellationToken cancellationToken)
    {
        await using var delete = new NpgsqlCommand("delete from pr2_view_rebuild where projection = $1", connection, transaction);
        delete.Parameters.Add(new() { Value = projection });
        await delete.ExecuteNonQueryAsync(cancellationToken);
    }
}
