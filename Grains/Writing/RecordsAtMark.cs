using PR2.Grains.Records;

namespace PR2.Grains.Writing;

/// <summary>
/// What a group commit found of the records view: the records agent's mark, locked (null when it could not be
/// taken at once), and the stored records of the commit's actors.
/// </summary>
internal sealed record RecordsAtMark(long? Mark, Dictionary<string, RecordState> Records)
{
    public static RecordsAtMark None { get; } = new(null, []);
}
