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

    /// <summary>
    /// The record after an entry whose body is <paramref name="body"/> (JSON object text, canonical or not). A merge an
    /// actor on this silo worked out ahead for the same entry is taken from <paramref name="merges"/> when given.
    /// </summary>
    public RecordState Apply(MessageKind kind, string body, LamportStamp stamp, long position, RecentMerges? merges = null) =>
        Accept(Next(kind, body, merges, ahead: false), stamp, position);

    /// <summary>
    /// The status and state this record takes from an entry about to be appended (its stamp and position come with
    /// the acknowledgement: <see cref="Accept"/>); a merge is kept in <paramref name="merges"/> for the records agent.
    /// </summary>
    public (RecordStatus Status, string? State) Propose(MessageKind kind, string body, RecentMerges merges) =>
        Next(kind, body, merges, ahead: true);

    /// <summary>The record after the entry whose status and state were <paramref name="proposed"/>, now stamped and placed.</summary>
    public RecordState Accept((RecordStatus Status, string? State) proposed, LamportStamp stamp, long position) =>
        new(proposed.Status, Version + 1, proposed.State, FirstStamp ?? stamp, stamp, position);

    /// <summary>
    /// Applies an entry on top when it is newer (Lamport) than the record's last one; null when it is not, and the
    /// actor must be refolded from its journal to keep the Lamport order.
    /// </summary>
    public RecordState? ApplyIfNewer(MessageKind kind, string body, LamportStamp stamp, long position, RecentMerges? merges = null) =>
        LastStamp is { } last && stamp <= last ? null : Apply(kind, body, stamp, position, merges);

    /// <summary>Folds entries (in the order given) onto <paramref name="start"/> (default: a missing record).</summary>
    public static RecordState Fold(IEnumerable<JournalEntry> entries, RecordState? start = null) =>
        entries.Aggregate(start ?? Missing, (record, entry) => record.Apply(entry.Kind, entry.Body, entry.Stamp, entry.Position));

    // Insert makes the record live with the body as its state, modify merges into a live one, cancel is final.
    private (RecordStatus Status, string? State) Next(MessageKind kind, string body, RecentMerges? merges, bool ahead) => (Status, kind) switch
    {
        (RecordStatus.Canceled, _) => (RecordStatus.Canceled, State),
        (_, MessageKind.Cancel) => (RecordStatus.Canceled, State),
        (_, MessageKind.Insert) => (RecordStatus.Live, CanonicalJson.Compact(body)),
        (RecordStatus.Live, MessageKind.Modify) => (RecordStatus.Live,
            merges is null ? JsonMergePatch.Apply(State!, body) : ahead ? merges.MergeAhead(State!, body) : merges.Merge(State!, body)),
        _ => (Status, State),
    };

    public ActorRecord ToRecord(ActorRef actor) => new(actor, Status, Version, State, FirstStamp, LastStamp, LastPosition);
}
