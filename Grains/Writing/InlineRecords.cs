using Npgsql;
using NpgsqlTypes;
using PR2.Grains.Agents;
using PR2.Grains.Records;
using PR2.Grains.Storage;

namespace PR2.Grains.Writing;

/// <summary>
/// Projects a group commit's new entries into the records view of the replica it writes, in the commit's own
/// transaction, when the records agent there stands exactly at the head (or gets there with the batch it is
/// applying): the records and the agent's mark move with the entries, so the records are visible with the
/// acknowledgement and the agent has nothing left to read, parse or commit for them. In every other case (the
/// agent further behind, a refold pending after anti-entropy lowered a stamp, an entry not newer than its record)
/// the commit leaves the entries to the agent, which reads them from the journal as before. Both fold with
/// <see cref="RecordState.ApplyIfNewer"/>.
/// </summary>
internal static class InlineRecords
{
    // Locks the records agent's mark when it is within one agent batch of the head (the head is locked by this
    // commit, so it is the last committed position). Then it waits: an agent batch in flight there ends at the
    // head, and the commit can go on from it; without the wait, commits that keep meeting agent batches would
    // keep waking the agent for more, and the two would never get out of step. Further behind, or with a refold
    // pending, no row is returned and nothing waits: the entries are the agent's.
    private const string LockMark = """
        select position from pr2_agent_mark
        where agent = $1 and shard = $2 and (select position from pr2_writer_head) - position <= $3
          and not exists (select 1 from pr2_restamp where not refolded)
        for update
        """;

    /// <summary>Adds the two checks (the mark, locked; the batch's actors' records) to a commit's first batch.</summary>
    public static void AddChecks(NpgsqlBatch batch, int shard, string[] actorIds)
    {
        batch.BatchCommands.Add(new(LockMark)
        {
            Parameters = { new() { Value = RecordsProjector.AgentName }, new() { Value = shard }, new() { Value = (long)AgentRunner.DefaultBatchSize } },
        });
        batch.BatchCommands.Add(new(RecordStore.SelectByActors) { Parameters = { JournalStore.Array(actorIds, NpgsqlDbType.Text) } });
    }

    /// <summary>Reads the results of <see cref="AddChecks"/>, the reader standing on the mark's result.</summary>
    public static async Task<RecordsAtMark> ReadChecksAsync(NpgsqlDataReader reader)
    {
        long? mark = await reader.ReadAsync() ? reader.GetInt64(0) : null;
        await reader.NextResultAsync();
        var records = new Dictionary<string, RecordState>(StringComparer.Ordinal);
        while (await reader.ReadAsync())
        {
            records[reader.GetString(0)] = RecordStore.ReadRow(reader);
        }

        return new RecordsAtMark(mark, records);
    }

    /// <summary>
    /// The records after the plan's new entries, or null when the commit must leave them to the agent: the mark is
    /// not at <paramref name="head"/> (the position before the plan) or an entry is not newer than its record.
    /// </summary>
    public static Dictionary<string, RecordState>? Fold(RecordsAtMark current, long head, CommitPlan plan)
    {
        if (current.Mark != head || plan.NewEntries.Count == 0)
        {
            return null;
        }

        var changed = new Dictionary<string, RecordState>(StringComparer.Ordinal);
        foreach (var (request, ack, _) in plan.NewEntries)
        {
            var actorId = ack.Actor.ActorId;
            var record = changed.GetValueOrDefault(actorId) ?? current.Records.GetValueOrDefault(actorId) ?? RecordState.Missing;
            if (record.ApplyIfNewer(request.Message.Kind, request.CanonicalBody, ack.Stamp, ack.Position) is not { } next)
            {
                return null;
            }

            changed[actorId] = next;
        }

        return changed;
    }

    /// <summary>Adds the records' upsert and the mark's move from <paramref name="from"/> to <paramref name="to"/> to a commit's write batch.</summary>
    public static void AddWrites(NpgsqlBatch batch, int shard, long from, long to, Dictionary<string, RecordState> records)
    {
        batch.BatchCommands.Add(RecordStore.Upsert(records));
        batch.BatchCommands.Add(new(AgentMarks.Advance)
        {
            Parameters = { new() { Value = to }, new() { Value = RecordsProjector.AgentName }, new() { Value = shard }, new() { Value = from } },
        });
    }
}
