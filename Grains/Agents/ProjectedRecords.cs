using PR2.Grains.Records;

namespace PR2.Grains.Agents;

/// <summary>
/// What the records agent last wrote into one replica's <c>pr2_record</c>, kept in memory so that a batch need not
/// read back (and parse) the records it is about to change. Valid only at the mark and revision it was left at: the
/// records and the mark's revision change in one transaction (every transaction that writes records counts one
/// revision, also a refold that applies no entry), so a batch that finds the mark where this cache left it may trust
/// the cache. Anything else (another activation moved on or refolded, a batch rolled back after a refold) empties it.
/// Bounded: past <see cref="Limit"/> records it starts over.
/// </summary>
internal sealed class ProjectedRecords
{
    public const int Limit = 10_000;

    private readonly Dictionary<string, RecordState> _records = new(StringComparer.Ordinal);
    private (long Position, long Revision) _mark = (-1, -1);
    private AgentBatch? _stagedFor;
    private Dictionary<string, RecordState>? _staged;

    /// <summary>The cached records among <paramref name="actorIds"/> if the cache is where <paramref name="batch"/> starts; the rest must be read.</summary>
    public (Dictionary<string, RecordState> Found, List<string> Missing) Lookup(AgentBatch batch, IEnumerable<string> actorIds)
    {
        lock (_records)
        {
            if (_mark != (batch.Mark, batch.Revision))
            {
                _records.Clear();
                _mark = (batch.Mark, batch.Revision);
            }

            var found = new Dictionary<string, RecordState>(StringComparer.Ordinal);
            var missing = new List<string>();
            foreach (var actorId in actorIds)
            {
                if (_records.TryGetValue(actorId, out var record))
                {
                    found[actorId] = record;
                }
                else
                {
                    missing.Add(actorId);
                }
            }

            return (found, missing);
        }
    }

    /// <summary>Holds what <paramref name="batch"/> writes until its transaction commits.</summary>
    public void Stage(AgentBatch batch, Dictionary<string, RecordState> written)
    {
        lock (_records)
        {
            (_stagedFor, _staged) = (batch, written);
        }
    }

    /// <summary><paramref name="batch"/> committed, leaving the mark at <paramref name="mark"/>.</summary>
    public void Committed(AgentBatch batch, long mark)
    {
        lock (_records)
        {
            if (_mark != (batch.Mark, batch.Revision))
            {
                // The cache did not describe the records this batch started from (emptied by a refold): start over.
                Clear();
                return;
            }

            if (ReferenceEquals(_stagedFor, batch) && _staged is not null)
            {
                foreach (var (actorId, record) in _staged)
                {
                    _records[actorId] = record;
                }
            }

            (_stagedFor, _staged) = (null, null);
            _mark = (mark, batch.Revision + 1);
            if (_records.Count > Limit)
            {
                _records.Clear();
            }
        }
    }

    /// <summary>Forgets everything: records were written that this cache did not see.</summary>
    public void Clear()
    {
        lock (_records)
        {
            _records.Clear();
            _mark = (-1, -1);
        }
    }
}
