using Npgsql;
using PR2.Grains.Storage;

namespace PR2.Grains.Records;

/// <summary>
/// Per (database, actor): the record as a change feed's last page left it, and the position it covers (the fold of the
/// actor's entries at or before it). Positions at or before it never change (the journal is append-only and filled in
/// order), so the next page needs only the entries after it, folded on top when they come in Lamport order; an older
/// one (anti-entropy brought it in) sends the caller back to the whole history. A restamp changes stamps already folded,
/// so one recorded anywhere in that database empties its records. Bounded: past <see cref="Limit"/> it starts over.
/// Used by one caller at a time (a feed grain activation's turns, a stream receiver's reads).
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
        long afterPosition, IReadOnlyList<JournalEntry> entries, int maxGap, bool everyEntryFolded = false)
    {
        if (!_records.TryGetValue((source, actor.ActorId), out var kept) || kept.Position > afterPosition
            || (!everyEntryFolded && afterPosition - kept.Position > maxGap))
        {
            return null;
        }

        // The actor's entries between the kept record and this page (none when the feed goes on from its last page, or
        // when the caller folded every entry before this page, as a stream reader does).
        var gap = kept.Position < afterPosition && !everyEntryFolded
            ? await JournalStore.ReadActorBetweenAsync(connection, actor, kept.Position, afterPosition) : [];
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

    /// <summary>
    /// The record each of <paramref name="entries"/> left (entries after <paramref name="afterPosition"/> in position
    /// order; for each actor among them, every one of its entries up to its last one here), in the entries' order:
    /// folded onto the kept record where possible, else from the actor's history. Keeps each actor's last record.
    /// <paramref name="everyEntryFolded"/>: the caller passed every entry of <paramref name="source"/> up to
    /// <paramref name="afterPosition"/> through here since this instance last kept anything of that source, so a kept record
    /// covers its actor's entries up to there and no gap needs reading.
    /// </summary>
    public async Task<List<(JournalEntry Entry, RecordState State)>> StatesAsync(NpgsqlDataSource source, NpgsqlConnection connection,
        long afterPosition, IReadOnlyList<JournalEntry> entries, int maxGap, bool everyEntryFolded = false)
    {
        var byPosition = new Dictionary<long, RecordState>(entries.Count);
        var missed = new List<IGrouping<ActorRef, JournalEntry>>();
        foreach (var actorEntries in entries.GroupBy(e => e.Actor))
        {
            var states = await ContinueAsync(source, connection, actorEntries.Key, afterPosition, actorEntries.ToList(), maxGap, everyEntryFolded);
            if (states is null)
            {
                missed.Add(actorEntries);
                continue;
            }

            Take(actorEntries.Key, states);
        }

        if (missed.Count > 0)
        {
            // The histories of every actor not kept, in one query (a page of new actors costs one read, not one each).
            var histories = await JournalStore.ReadActorsAsync(connection, missed[0].Key.Shard, missed.Select(a => a.Key.ActorId).ToList(),
                missed.Max(a => a.Max(e => e.Position)));
            foreach (var actorEntries in missed)
            {
                var upTo = actorEntries.Max(e => e.Position);
                Take(actorEntries.Key, StatesAfter(histories[actorEntries.Key.ActorId].Where(e => e.Position <= upTo).ToList(), actorEntries.ToList()).ToList());
            }
        }

        return entries.Select(e => (e, byPosition[e.Position])).ToList();

        void Take(ActorRef actor, List<(JournalEntry Entry, RecordState State)> states)
        {
            foreach (var (entry, state) in states)
            {
                byPosition[entry.Position] = state;
            }

            Keep(source, actor, states[^1].Entry.Position, states[^1].State);
        }
    }

    public void Keep(NpgsqlDataSource source, ActorRef actor, long position, RecordState state)
    {
        if (_records.Count >= Limit)
        {
            _records.Clear();
        }

        _records[(source, actor.ActorId)] = (position, state);
    }

    // The record each wanted entry left: the fold of the actor's entries up to that entry's position. History comes in
    // Lamport order; when that is also position order (always, unless anti-entropy brought in lower-stamped entries
    // later), one pass folds them all, else each is folded from its own prefix.
    private static IEnumerable<(JournalEntry Entry, RecordState State)> StatesAfter(IReadOnlyList<JournalEntry> history, IReadOnlyList<JournalEntry> wanted)
    {
        var inPositionOrder = history.Zip(history.Skip(1)).All(pair => pair.First.Position < pair.Second.Position);
        if (!inPositionOrder)
        {
            return wanted.Select(entry => (entry, RecordState.Fold(history.Where(e => e.Position <= entry.Position))));
        }

        var positions = wanted.Select(e => e.Position).ToHashSet();
        var states = new Dictionary<long, RecordState>();
        var state = RecordState.Missing;
        foreach (var entry in history)
        {
            state = RecordState.Fold([entry], state);
            if (positions.Contains(entry.Position))
            {
                states[entry.Position] = state;
            }
        }

        return wanted.Select(entry => (entry, states[entry.Position]));
    }
}
