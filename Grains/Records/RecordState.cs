using PR2.Grains.Json;

namespace PR2.Grains.Records;

/// <summary>
/// A record as a fold of journal entries in Lamport order. Immutable: <see cref="Apply"/> returns the next state.
/// The fold is total and deterministic so that any replica folding the same entries gets the same record:
/// insert makes a missing record live (a later insert replaces the state), modify merges into a live
/// record, cancel is final, and nothing after a cancel changes the state. Every entry counts as a version.
/// <see cref="State"/> is the record's JSON object in canonical text (<see cref="CanonicalJson"/>), the form it is
/// stored and returned in; a modify merges into it without building a node tree.
/// </summary>
public sealed record RecordState(
    RecordStatus Status,
    long Version,
    string? State,
    LamportStamp? FirstStamp,
    LamportStamp? LastStamp,
    long LastPosition)
{
    public static RecordState Missing { get; } = new(RecordStatus.Missing, 0, null, null, null, 0);

    /// <summary>The record after an entry whose body is <paramref name="body"/> (JSON object text, canonical or not).</summary>
    public RecordState Apply(MessageKind kind, string body, LamportStamp stamp, long position)
    {
        var (status, state) = (Status, kind) switch
        {
            (RecordStatus.Canceled, _) => (RecordStatus.Canceled, State),
            (_, MessageKind.Cancel) => (RecordStatus.Canceled, State),
            (_, MessageKind.Insert) => (RecordStatus.Live, CanonicalJson.Compact(body)),
            (RecordStatus.Live, MessageKind.Modify) => (RecordStatus.Live, JsonMergePatch.Apply(State!, body)),
            _ => (Status, State),
        };
        return new RecordState(status, Version + 1, state, FirstStamp ?? stamp, stamp, position);
    }

    /// <summary>
    /// Applies an entry on top when it is newer (Lamport) than the record's last one; null when it is not, and the
    /// actor must be refolded from its journal to keep the Lamport order.
    /// </summary>
    public RecordState? ApplyIfNewer(MessageKind kind, string body, LamportStamp stamp, long position) =>
        LastStamp is { } last && stamp <= last ? null : Apply(kind, body, stamp, position);

    /// <summary>Folds entries (in the order given) onto <paramref name="start"/> (default: a missing record).</summary>
    public static RecordState Fold(IEnumerable<JournalEntry> entries, RecordState? start = null) =>
        entries.Aggregate(start ?? Missing, (record, entry) => record.Apply(entry.Kind, entry.Body, entry.Stamp, entry.Position));

    public ActorRecord ToRecord(ActorRef actor) => new(actor, Status, Version, State, FirstStamp, LastStamp, LastPosition);
}
