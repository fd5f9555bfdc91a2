using System.Text.Json.Nodes;
using Npgsql;
using PR2.Grains.Records;
using PR2.Grains.Storage;

namespace PR2.Grains.Agents;

/// <summary>
/// The "records" agent: folds each shard's journal into that shard's <c>pr2_record</c> view. An entry
/// that is newer (Lamport) than the record's last one is applied on top; an older one (possible once
/// replicas exchange entries) makes the agent re-fold that actor from its journal entries up to the
/// batch, so the same set of entries always yields the same record whatever order they arrived in.
/// </summary>
public sealed class RecordsProjector : IJournalAgent
{
    public const string AgentName = "records";

    public string Name => AgentName;

    public bool Follows(int shard) => true;

    public bool PerReplica => true;

    public int HomeShard(int sourceShard) => sourceShard;

    // Messages whose stamp was lowered by anti-entropy (sql/008): refold their actors up to the mark, so the
    // record is what the agreed stamps give. Runs in the batch's transaction, with the mark locked.
    public async Task<int> BeforeBatchAsync(int sourceShard, NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        var actors = new List<string>();
        await using (var pending = new NpgsqlCommand("""
            update pr2_restamp r set refolded = true from pr2_journal j
            where j.message_id = r.message_id and not r.refolded
            returning j.actor_id
            """, connection, transaction))
        await using (var reader = await pending.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                actors.Add(reader.GetString(0));
            }
        }

        if (actors.Count == 0)
        {
            return 0;
        }

        var mark = await AgentMarks.ReadAsync(connection, AgentName, sourceShard, cancellationToken);
        var refolded = new Dictionary<string, RecordState>(StringComparer.Ordinal);
        foreach (var actorId in actors.Distinct(StringComparer.Ordinal))
        {
            var state = RecordState.Fold(await JournalStore.ReadActorAsync(connection, new ActorRef(sourceShard, actorId), mark, cancellationToken));
            if (state.Status != RecordStatus.Missing || state.Version > 0)
            {
                refolded[actorId] = state;
            }
        }

        await RecordStore.UpsertAsync(connection, refolded, cancellationToken);
        return actors.Count;
    }

    public async Task ApplyAsync(int sourceShard, IReadOnlyList<JournalEntry> entries, NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        var records = await RecordStore.ReadAsync(connection, entries.Select(e => e.Actor.ActorId).Distinct().ToList(), cancellationToken);
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
            if (record.LastStamp is { } last && entry.Stamp <= last)
            {
                refold.Add(actorId);
                continue;
            }

            changed[actorId] = record.Apply(entry.Kind, JsonNode.Parse(entry.Body)!.AsObject(), entry.Stamp, entry.Position);
        }

        var upTo = entries[^1].Position;
        foreach (var actorId in refold)
        {
            var all = await JournalStore.ReadActorAsync(connection, new ActorRef(sourceShard, actorId), upTo, cancellationToken);
            changed[actorId] = RecordState.Fold(all);
        }

        await RecordStore.UpsertAsync(connection, changed, cancellationToken);
    }
}
