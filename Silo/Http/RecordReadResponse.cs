namespace PR2.Silo.Http;

/// <summary>A record read: the record, the replica that answered, the journal position it reflects, and its read token.</summary>
public sealed record RecordReadResponse(RecordView Record, int Replica, long Mark, string Token)
{
    public static RecordReadResponse From(RecordRead read) => new(RecordView.From(read.Record), read.Replica, read.Mark, read.Token.ToString());
}
