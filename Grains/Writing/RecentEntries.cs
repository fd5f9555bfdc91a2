using System.Runtime.CompilerServices;
using Npgsql;

namespace PR2.Grains.Writing;

/// <summary>
/// The entries this silo's journal writers committed last, per replica database, for the agents on this silo that
/// follow those journals: an agent takes its next entries from here instead of reading back what was written a few
/// milliseconds earlier (for the records agent that read was a fifth of its database time). Only entries a writer saw
/// commit are added, in position order, and a journal is append-only, so an entry here is exactly the row at its
/// position. Kept per journal: the last <see cref="Capacity"/> or more, contiguous; a writer that opens forgets its
/// journal's, and entries that do not follow on (anti-entropy wrote in between) start the run again. An agent that is
/// further behind, or on another silo, reads the journal as before.
/// </summary>
public sealed class RecentEntries
{
    /// <summary>Entries kept per journal at least (at most twice as many).</summary>
    public const int Capacity = 4096;

    private readonly ConditionalWeakTable<NpgsqlDataSource, Run> _journals = new();
    private long _taken;

    /// <summary>How many entries agents have taken from here (rather than from their journal) since the silo started.</summary>
    public long Taken => Interlocked.Read(ref _taken);

    /// <summary>Drops what is kept for <paramref name="journal"/> (a writer opened on it).</summary>
    public void Forget(NpgsqlDataSource journal)
    {
        if (_journals.TryGetValue(journal, out var run))
        {
            run.Clear();
        }
    }

    /// <summary>Keeps entries that committed in <paramref name="journal"/> (contiguous positions, in order).</summary>
    public void Committed(NpgsqlDataSource journal, IReadOnlyList<JournalEntry> entries)
    {
        if (entries.Count > 0)
        {
            _journals.GetValue(journal, _ => new Run()).Add(entries);
        }
    }

    /// <summary>
    /// The entries after position <paramref name="after"/> (at most <paramref name="limit"/>, contiguous from
    /// <paramref name="after"/> + 1) if the next one is kept here; null otherwise (read the journal).
    /// Cut at <paramref name="limit"/>, they go on to the end of the commit they stopped in (up to <paramref name="bound"/>).
    /// </summary>
    public IReadOnlyList<JournalEntry>? TryRead(NpgsqlDataSource journal, long after, int limit, long bound = long.MaxValue)
    {
        if (limit <= 0 || !_journals.TryGetValue(journal, out var run) || run.TryRead(after, limit, bound) is not { } entries)
        {
            return null;
        }

        Interlocked.Add(ref _taken, entries.Count);
        return entries;
    }

    private sealed class Run
    {
        private readonly Lock _lock = new();
        private readonly List<JournalEntry> _entries = [];

        // The last position of each commit kept: a read cut inside a commit goes on to its end.
        private readonly HashSet<long> _commitEnds = [];

        public void Clear()
        {
            lock (_lock)
            {
                _entries.Clear();
                _commitEnds.Clear();
            }
        }

        public void Add(IReadOnlyList<JournalEntry> entries)
        {
            lock (_lock)
            {
                if (_entries.Count > 0 && entries[0].Position != _entries[^1].Position + 1)
                {
                    _entries.Clear();
                    _commitEnds.Clear();
                }

                _entries.AddRange(entries);
                _commitEnds.Add(entries[^1].Position);
                if (_entries.Count > 2 * Capacity)
                {
                    _entries.RemoveRange(0, _entries.Count - Capacity);
                    _commitEnds.RemoveWhere(end => end < _entries[0].Position);
                }
            }
        }

        public List<JournalEntry>? TryRead(long after, int limit, long bound)
        {
            lock (_lock)
            {
                if (_entries.Count == 0)
                {
                    return null;
                }

                var index = after + 1 - _entries[0].Position;
                if (index < 0 || index >= _entries.Count)
                {
                    return null;
                }

                var count = (int)Math.Min(limit, _entries.Count - index);
                while (index + count < _entries.Count && !_commitEnds.Contains(_entries[(int)(index + count - 1)].Position)
                       && _entries[(int)(index + count)].Position <= bound)
                {
                    count++;
                }

                return _entries.GetRange((int)index, count);
            }
        }
    }
}
