namespace PR2.Client;

/// <summary>An actor's record with its state read as <typeparamref name="T"/>.</summary>
/// <param name="Actor">The actor.</param>
/// <param name="Status">Live, canceled, or missing (no record: <see cref="State"/> is default).</param>
/// <param name="Version">Its version: how many entries it folds.</param>
/// <param name="State">Its state, deserialized (default when missing).</param>
/// <param name="LastStamp">The stamp of its latest entry (null when missing).</param>
/// <param name="Replica">The replica that answered.</param>
public sealed record Pr2Record<T>(ActorRef Actor, RecordStatus Status, long Version, T? State, LamportStamp? LastStamp, int Replica);
