using PR2.Grains.Storage;

namespace PR2.Grains;

/// <summary>The checks every message passes before its body is looked at: where it goes and what it carries around the body.</summary>
internal static class MessageEnvelope
{
    private const int MaxSenderLength = 200;

    /// <summary>The actor at (<paramref name="shard"/>, <paramref name="actorId"/>), or why there can be none.</summary>
    public static ActorRef Resolve(ShardRegistry shards, long shard, string? actorId)
    {
        if (shard is < 0 or > int.MaxValue)
        {
            throw new Pr2Exception(ErrorCode.UnknownShard,
                $"shard {shard} is not configured; known shards: {string.Join(", ", shards.ShardCodes)}");
        }

        _ = shards.Get((int)shard); // one not known here, or removed, is refused saying which

        return ActorRef.TryValidate((int)shard, actorId, out var problem)
            ? new ActorRef((int)shard, actorId!)
            : throw new Pr2Exception(ErrorCode.BadActorId, problem);
    }

    /// <summary>
    /// The highest Lamport counter a message may name as its cause: 2^53, the largest integer every JSON client
    /// reads exactly. A shard's clock moves past the cause it is given, so an unbounded one would let any caller push
    /// every later stamp of the shard (and, by anti-entropy, of its replicas) to the counter's end; no real cluster
    /// comes near this bound (centuries at a million entries a second).
    /// </summary>
    public const long MaxCausedByCounter = 1L << 53;

    /// <summary>
    /// Refuses a message without a MessageId, addressed to another actor, of no known kind, without a sender (or with
    /// one PostgreSQL cannot store), with a hop count outside 0..<see cref="Rules.RuleAgent.MaxHops"/>, or caused by a
    /// stamp that is not one this cluster could have made.
    /// </summary>
    public static void Check(Message message, ActorRef receiver, ShardRegistry shards)
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

        if (SenderProblem(message.Sender) is { } sender)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, sender);
        }

        if (message.Hops is < 0 or > Rules.RuleAgent.MaxHops)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, $"hops must be between 0 and {Rules.RuleAgent.MaxHops} (rule steps that led to the message), got {message.Hops}");
        }

        if (message.CausedBy is { } cause && (cause.Counter is < 1 or > MaxCausedByCounter || cause.Shard < 0 || !(shards.Contains(cause.Shard) || shards.IsRemoved(cause.Shard))))
        {
            throw new Pr2Exception(ErrorCode.BadMessage,
                $"causedBy {cause} is not a stamp of this cluster: its counter must be between 1 and {MaxCausedByCounter} and its shard a configured one");
        }
    }

    /// <summary>Why <paramref name="sender"/> cannot be a message's sender, or null: it is stored as text and shown to people.</summary>
    public static string? SenderProblem(string? sender)
    {
        if (string.IsNullOrEmpty(sender) || sender.Length > MaxSenderLength)
        {
            return $"sender must be given and at most {MaxSenderLength} characters";
        }

        for (var i = 0; i < sender.Length; i++)
        {
            if (char.IsControl(sender[i]))
            {
                return $"sender must not hold control characters (U+{(int)sender[i]:X4} at {i})";
            }

            if (char.IsSurrogate(sender[i]) && !(char.IsHighSurrogate(sender[i]) && i + 1 < sender.Length && char.IsLowSurrogate(sender[++i])))
            {
                return $"sender is not valid Unicode text (half of a surrogate pair at {i})";
            }
        }

        return null;
    }
}
