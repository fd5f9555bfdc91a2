namespace PR2;

/// <summary>
/// New MessageIds for callers that do not bring their own. Time-ordered (UUID version 7): the journal's unique
/// index on MessageId then grows at its right edge like the position index, instead of taking each insert on a
/// random page of an index that outgrows memory as the journal does (a read per insert, and every page written
/// in full to the WAL again after each checkpoint). Any unique id works; these are cheaper to store.
/// </summary>
public static class MessageIds
{
    public static Guid New() => Guid.CreateVersion7();
}
