using PR2.Grains.Storage;

namespace PR2.Grains;

/// <summary>The checks every message passes before its body is looked at: where it goes and what it carries around the body.</summary>
internal static class MessageEnvelope
{
    private const int MaxSenderLength = 200;

    /// <summary>The actor at (<paramref name="shard"/>, <paramref name="actorId"/>), or why there can be none.</summary>
    public static ActorRef Resolve(ShardRegistry shards, long shard, string? actorId)
    {
        if (shard is < 0 or > int.MaxValue || !shards.Contains((int)shard))
        {
            throw new Pr2Exception(ErrorCode.UnknownShard,
                $"shard {shard} is not configured; known shards: {string.Join(", ", shards.ShardCodes)}");
        }

        return ActorRef.TryValidate((int)shard, actorId, out var problem)
            ? new ActorRef((int)shard, actorId!)
            : throw new Pr2Exception(ErrorCode.BadActorId, problem);
    }

    /// <summary>Refuses a message without a MessageId, addressed to another actor, of no known kind or without a sender.</summary>
    public static void Check(Message message, ActorRef receiver)
    {
        if (message.MessageId == Guid.Empty)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, "MessageId must not be empty: it is the idempotency key");
        }

        if (message.Receiver != receiver)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, $"message is addressed to {message.Receiver} but was sent to actor {receiver}");
        }

        if (!Enum.IsDefined(message.Kind))
        {
            throw new Pr2Exception(ErrorCode.BadMessage, $"kind {(int)message.Kind} is not insert, modify or cancel");
        }

        if (message.Sender is null || message.Sender.Length > MaxSenderLength)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, $"sender must be given and at most {MaxSenderLength} characters");
        }
    }
}
