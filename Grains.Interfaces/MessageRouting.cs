namespace PR2;

/// <summary>Where a message goes: a first insert (no expected version, or 0) to its shard's insert path, anything else to its actor.</summary>
public static class MessageRouting
{
    /// <summary>Sends <paramref name="message"/> the way <see cref="IActorGrain.Send"/> does, by the cheapest way in.</summary>
    public static Task<WriteAck> SendMessage(this IGrainFactory grains, Message message)
    {
        var receiver = message.Receiver ?? throw new Pr2Exception(ErrorCode.BadMessage, "message has no receiver");
        return IsFirstInsert(message)
            ? grains.GetGrain<IInsertGrain>(receiver.Shard).Insert(message)
            : grains.GetGrain<IActorGrain>(receiver.Shard, receiver.ActorId, null).Send(message);
    }

    /// <summary>An insert that does not name a version other than 0: one that an actor with no entries accepts.</summary>
    public static bool IsFirstInsert(Message message) => message.Kind == MessageKind.Insert && message.ExpectedVersion is null or 0;
}
