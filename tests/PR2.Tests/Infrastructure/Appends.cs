using PR2.Grains.Json;

namespace PR2.Tests.Infrastructure;

/// <summary>Append requests as an actor grain makes them, for tests that drive a <c>JournalWriter</c> directly.</summary>
public static class Appends
{
    /// <summary>A new message (fresh MessageId) to <paramref name="actor"/> at <paramref name="version"/>; the body defaults to <c>{"v": version}</c>.</summary>
    public static AppendRequest Request(ActorRef actor, MessageKind kind, long version, string? body = null)
    {
        var parsed = MessageBody.Parse(kind, body ?? $$"""{"v": {{version}}}""", 4096);
        var message = new Message(Guid.NewGuid(), "test", actor, kind, parsed.Canonical);
        return new AppendRequest(message, parsed.Canonical, MessageBody.ContentHash(actor, kind, parsed.Canonical), version);
    }
}
