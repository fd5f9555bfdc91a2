namespace PR2.Silo.Http;

/// <summary>A record change as an SSE event's data: the entry's position, stamp and kind, and the record it left.</summary>
public sealed record RecordChangeView(long Position, string Stamp, string Kind, RecordView Record)
{
    public static RecordChangeView From(RecordChange change) =>
        new(change.Position, change.Stamp.ToString(), change.Kind.ToString().ToLowerInvariant(), RecordView.From(change.Record));
}
