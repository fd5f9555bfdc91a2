using System.Collections.Concurrent;
using Npgsql;
using PR2.Grains.Records;
using PR2.Grains.Storage;

namespace PR2.Grains.Agents;

/// <summary>
/// The "records" agent: folds each shard's journal into that shard's <c>pr2_record</c> view. An entry
/// that is newer (Lamport) than the record's last one is applied on top; an older one (possible once
/// replicas exchange entries) makes the agent re-fold that actor from its journal entries up to the
/// batch, so the same set of entries always yields the same record whatever order they arrived in. Given the shadow
/// table, it is the rebuild's fold ("records~next", <see cref="Projections.RecordsRebuild"/>): the same code, its own
/// mark and restamp flag, nothing readers see until the swap.
/// </summary>
public sealed class RecordsProjector(RecentMerges? merges = null, string table = RecordStore.Live) : IJournalAgent
{
    public const string AgentName = "records";

    /// <summary>The name (and mark) of a rebuild's fold into <see cref="RecordStore.Next"/>.</summary>
    public const string ShadowName = "records~next";

    /// <summary>The flag of pr2_restamp that says the rebuild's fold has taken a restamp in (sql/019).</summary>
    public const string ShadowRefolded = "next_refolded";

    private bool Shadow => table != RecordStore.Live;

    // Which of pr2_restamp's flags says this fold has taken a restamp in (sql/008, sql/019).
    private string Refolded => Shadow ? ShadowRefolded : "refolded";

    /// <summary>
    /// Sets <paramref name="flag"/> on every restamp. Like every statement here that sets a restamp's flags (the live and
    /// the rebuild's folds run side by side, beside anti-entropy recording restamps), it locks the rows in message id
    /// order, so two of them never wait on each other's rows.
    /// </summary>
    public static string TakeAllRestamps(string flag) => $"""
        update pr2_restamp r set {flag} = true
        from (select message_id from pr2_restamp where not {flag} order by message_id for update) p
        where r.message_id = p.message_id
        """;

    // Per (shard, replica): what this silo's agent last wrote there.
    private readonly ConcurrentDictionary<(int Shard, int Replica), ProjectedRecords> _written = new();

    public string Name => Shadow ? ShadowName : AgentName;

    public bool Follows(int shard) => true;

    public bool PerReplica => true;

    public bool ReadsRecordedAt => false;

    public int HomeShard(int sourceShard) => sourceShard;

    // Messages whose stamp was lowered by anti-entropy (sql/008): refold their actors up to the mark, so the
    // record is what the agreed stamps give. Runs in the batch's transaction, with the mark locked. A restamp of an
    // entry past the mark stays pending: the batch may take that entry from the writer's memory, with the stamp it
    // was committed under, so the actor is refolded by the next batch, once the mark has passed it.
    public async Task<int> BeforeBatchAsync(AgentBatch batch, NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        var sourceShard = batch.SourceShard;
        var actors = new List<string>();
        await using (var pending = new NpgsqlCommand($"""
            update pr2_restamp r set {Refolded} = true
            from (select r.message_id, j.actor_id from pr2_restamp r join pr2_journal j using (message_id)
                  where not r.{Refolded} and j.position <= $1 order by r.message_id for update of r) p
            where r.message_id = p.message_id
            returning p.actor_id
            """, connection, transaction))
        {
            pending.Parameters.Add(new() { Value = batch.Mark });
            await using var reader = await pending.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                actors.Add(reader.GetString(0));
            }
        }

        if (actors.Count == 0)
        {
            return 0;
        }

        // Records change below that the cache of written records does not see.
        Written(batch).Clear();
        var mark = batch.Mark;
        var refolded = new Dictionary<string, RecordState>(StringComparer.Ordinal);
        foreach (var actorId in actors.Distinct(StringComparer.Ordinal))
        {
            var state = RecordState.Fold(await JournalStore.ReadActorAsync(connection, new ActorRef(sourceShard, actorId), mark, cancellationToken));
            if (state.Status != RecordStatus.Missing || state.Version > 0)
            {
                refolded[actorId] = state;
            }
        }

        await RecordStore.UpsertAsync(connection, refolded, cancellationToken, table);
        return actors.Count;
    }

    public async Task ApplyAsync(AgentBatch batch, IReadOnlyList<JournalEntry> entries, NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        var sourceShard = batch.SourceShard;
        var written = Written(batch);
        var (records, missing) = written.Lookup(batch, entries.Select(e => e.Actor.ActorId).Distinct(StringComparer.Ordinal));
        if (missing.Count > 0)
        {
            foreach (var (actorId, record) in await RecordStore.ReadAsync(connection, missing, cancellationToken, table))
            {
                records[actorId] = record;
            }
        }

        var changed = new Dictionary<string, RecordState>(StringComparer.Ordinal);
        var refold = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            var actorId = entry.Actor.ActorId;
            if (refold.Contains(actorId))
            {
                continue;
            }

            var record = changed.GetValueOrDefault(actorId) ?? records.GetValueOrDefault(actorId) ?? RecordState.Missing;
            if (record.ApplyIfNewer(entry.Kind, entry.Body, entry.Stamp, entry.Position, merges) is { } next)
            {
                changed[actorId] = next;
            }
            else
            {
                refold.Add(actorId);
            }
        }

        var upTo = entries[^1].Position;
        foreach (var actorId in refold)
        {
            var all = await JournalStore.ReadActorAsync(connection, new ActorRef(sourceShard, actorId), upTo, cancellationToken);
            changed[actorId] = RecordState.Fold(all);
        }

        await RecordStore.UpsertAsync(connection, changed, cancellationToken, table);
        written.Stage(batch, changed);
    }

    public void Committed(AgentBatch batch, long mark) => Written(batch).Committed(batch, mark);

    private ProjectedRecords Written(AgentBatch batch) => _written.GetOrAdd((batch.SourceShard, batch.Replica), _ => new ProjectedRecords());
}
