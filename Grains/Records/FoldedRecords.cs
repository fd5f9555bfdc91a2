using Npgsql;
using PR2.Grains.Storage;

namespace PR2.Grains.Records;

/// <summary>
/// Per (database, actor): the record as a change feed's last page left it, and the position it covers (the fold of the
/// actor's entries at or before it). Positions at or before it never change (the journal is append-only and filled in
/// order), so the next page needs only the entries after it, folded on top when they come in Lamport order; an older
/// one (anti-entropy brought it in) sends the caller back to the whole history. A restamp changes stamps already folded,
/// so one recorded anywhere in that database empties its records. Bounded: past <see cref="Limit"/> it starts over.
/// Used by one grain activation's turns only.
/// </summary>
internal sealed class FoldedRecords
{
    public const int Limit = 10_000;

    private readonly Dictionary<(NpgsqlDataSource Source, string ActorId), (long Position, RecordState State)> _records = [];
    private readonly Dictionary<NpgsqlDataSource, long> _restamps = [];

    /// <summary>Forgets the records of <paramref name="source"/> when its restamps changed since the last look (same snapshot as the page).</summary>
    public async Task CheckRestampsAsync(NpgsqlDataSource source, NpgsqlConnection connection)
    {
        await using var command = new NpgsqlCommand("select count(*) from pr2_restamp", connection);
        var count = (long)(await command.ExecuteScalarAsync())!;
        if (_restamps.TryGetValue(source, out var seen) && seen == count)
        {
            return;
        }

        _restamps[source] = count;
        foreach (var key in _records.Keys.Where(k => k.Source == source).ToList())
        {
            _records.Remove(key);
        }
    }

    /// <summary>
    /// The record after each of <paramref name="entries"/> (the actor's entries after <paramref name="afterPosition"/>, in
    /// position order), folded onto the kept record; null when there is none to go on from or the entries are not in
    /// Lamport order after it.
    /// </summary>
    public async Task<List<(JournalEntry Entry, RecordState State)>?> ContinueAsync(NpgsqlDataSource source, NpgsqlConnection connection, ActorRef actor,
        long afterPosition, IReadOnlyList<JournalEntry> entries, int maxGap)
    {
        if (!_records.TryGetValue((source, actor.ActorId), out var kept) || kept.Position > afterPosition || afterPosition - kept.Position > maxGap)
        {
            return null;
        }

        // The actor's entries between the kept record and this page (none when the feed goes on from its last page).
        var gap = kept.Position < afterPosition ? await JournalStore.ReadActorBetweenAsync(connection, actor, kept.Position, afterPosition) : [];
        var state = kept.State;
        var states = new List<(JournalEntry, RecordState)>(entries.Count);
        foreach (var entry in gap.Concat(entries))
        {
            if (state.LastStamp is { } last && entry.Stamp <= last)
            {
                return null;
            }

            state = RecordState.Fold([entry], state);
            if (entry.Position > afterPosition)
            {
                states.Add((entry, state));
            }
        }

        return states;
    }

    public void Keep(NpgsqlDataSource source, ActorRef actor, long position, RecordState state)
    {
        if (_records.Count >= Limit)
        {
            _records.Clear();
        }

        _records[(source, actor.ActorId)] = (position, state);
    }
}
