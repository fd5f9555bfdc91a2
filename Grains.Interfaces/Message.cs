namespace PR2;

/// <summary>
/// A request to change an actor's record. Becomes an immutable journal entry once accepted.
/// </summary>
/// <param name="MessageId">Idempotency key: sending the same id again returns the first acknowledgement.</param>
/// <param name="Sender">Who sent it (a user, a service, a rule); recorded in the journal, not interpreted.</param>
/// <param name="Receiver">The actor the message is for.</param>
/// <param name="Kind">Insert, modify (JSON merge patch) or cancel.</param>
/// <param name="Body">A JSON object, as text. For cancel it may be empty.</param>
/// <param name="ExpectedVersion">When set, the message is refused unless the record is at exactly this version (0 = no record yet).</param>
/// <param name="CausedBy">The Lamport stamp of the entry that caused this message, if any: the receiving shard's clock moves past it.</param>
/// <param name="Hops">How many rule steps led to this message (0 from a client): rule chains stop at a hop limit.</param>
[GenerateSerializer, Immutable, Alias("pr2.message.v1")]
public sealed record Message(
    [property: Id(0)] Guid MessageId,
    [property: Id(1)] string Sender,
    [property: Id(2)] ActorRef Receiver,
    [property: Id(3)] MessageKind Kind,
    [property: Id(4)] string Body,
    [property: Id(5)] long? ExpectedVersion = null,
    [property: Id(6)] LamportStamp? CausedBy = null,
    [property: Id(7)] int Hops = 0);
