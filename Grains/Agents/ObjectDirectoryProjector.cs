using Npgsql;
using NpgsqlTypes;
using PR2.Grains.Storage;

namespace PR2.Grains.Agents;

/// <summary>
/// The "object-directory" agent: follows every replica of every shard and records in the control shard which actor
/// ids exist where (and whether they were canceled). Its marks, one per followed replica (<c>object-directory@1</c>),
/// live in the control shard's database next to the rows they produced, so a fail-over of the followed shard changes
/// nothing: each replica's positions are its own. Every replica reports every actor it holds; the rows only grow
/// (an actor appears once, and canceled is final), so the reports commute and the directory is exact once the
/// replicas have converged. Given the shadow table, it is a rebuild's fold ("object-directory~next",
/// <see cref="Projections.ObjectDirectoryRebuild"/>): the same code, its own marks, nothing readers see until the swap.
/// </summary>
public sealed class ObjectDirectoryProjector(string table = ObjectDirectoryProjector.LiveTable) : IJournalAgent
{
    public const string AgentName = "object-directory";

    /// <summary>The name (and mark, with <c>@replica</c> for a shard other than 0) of a rebuild's fold.</summary>
    public const string ShadowName = "object-directory~next";

    public const string LiveTable = "pr2_object_directory";

    /// <summary>Where a rebuild folds (sql/022).</summary>
    public const string ShadowTable = "pr2_object_directory_rebuild";

    public string Name => table == LiveTable ? AgentName : ShadowName;

    public bool Follows(int shard) => true;

    public bool PerReplica => true;

    public int HomeShard(int sourceShard) => 0;

    public bool ReadsBodies => false;

    public bool ReadsModifies => false;

    public bool ReadsRecordedAt => false;

    // A rebuild's fold folds only while its rebuild is building. Read without a lock (a lock on the rebuild rows would hold
    // every other rebuild of the replica for a whole batch): a batch that raced the swap or a cancel may leave rows and a
    // mark in the shadow, true reports all, which the next start clears.
    public async Task<long> ReadyUpToAsync(int sourceShard, NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken) =>
        table == LiveTable || await Projections.RebuildRows.ReadAsync(connection, transaction, AgentName, cancellationToken) is { State: "building" } ? long.MaxValue : 0;

    public async Task ApplyAsync(AgentBatch batch, IReadOnlyList<JournalEntry> entries, NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        // Only inserts (an actor appears) and cancels (it ends) matter here; modifies change nothing.
        var actors = entries
            .Where(e => e.Kind != MessageKind.Modify)
            .GroupBy(e => e.Actor.ActorId, StringComparer.Ordinal)
            .Select(g => (ActorId: g.Key, First: g.Min(e => e.Position), Canceled: g.Any(e => e.Kind == MessageKind.Cancel)))
            .ToList();
        if (actors.Count == 0)
        {
            return;
        }

        await using var command = new NpgsqlCommand($"""
            insert into {table} as d (shard, actor_id, actor_type, status, first_position)
            select $1, a.actor_id, split_part(a.actor_id, '/', 1), case when a.canceled then 2 else 1 end, a.first
            from unnest($2::text[], $3::bigint[], $4::boolean[]) as a(actor_id, first, canceled)
            on conflict (shard, actor_id) do update set status = 2, updated_at = now()
                where excluded.status = 2 and d.status <> 2
            """, connection, transaction);
        command.Parameters.Add(new() { Value = batch.SourceShard });
        command.Parameters.Add(JournalStore.Array(actors.Select(a => a.ActorId).ToArray(), NpgsqlDbType.Text));
        command.Parameters.Add(JournalStore.Array(actors.Select(a => a.First).ToArray(), NpgsqlDbType.Bigint));
        command.Parameters.Add(JournalStore.Array(actors.Select(a => a.Canceled).ToArray(), NpgsqlDbType.Boolean));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}
