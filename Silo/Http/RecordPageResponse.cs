namespace PR2.Silo.Http;

/// <summary>One page of a query, read in one snapshot of one replica; pass <see cref="NextCursor"/> as <c>cursor</c> for the next.</summary>
public sealed record RecordPageResponse(IReadOnlyList<RecordView> Records, string? NextCursor, int Replica, long Mark, string Token)
{
    public static RecordPageResponse From(RecordPage page) =>
        new(page.Records.Select(RecordView.From).ToList(), page.NextCursor, page.Replica, page.Mark, page.Token.ToString());
}
