namespace PR2.Grains.Records;

/// <summary>
/// What a record in a given state refuses: the one rule book of the actor (<see cref="ActorGrain"/>) and of the
/// journal writer judging an atomic batch, so that a message in a batch is refused exactly when it would be alone.
/// </summary>
public static class MessageRules
{
    /// <summary>The refusal of <paramref name="message"/> by <paramref name="actor"/> at <paramref name="status"/> and <paramref name="version"/>; null when accepted.</summary>
    public static Pr2Exception? Refusal(ActorRef actor, RecordStatus status, long version, Message message) => (status, message.Kind) switch
    {
        (RecordStatus.Canceled, _) => new Pr2Exception(ErrorCode.RecordCanceled,
            $"{actor} was canceled at version {version}; a canceled record stays canceled"),
        (RecordStatus.Live, MessageKind.Insert) => new Pr2Exception(ErrorCode.RecordExists,
            $"{actor} already exists (version {version}); use modify"),
        (RecordStatus.Missing, MessageKind.Modify or MessageKind.Cancel) => new Pr2Exception(ErrorCode.RecordMissing,
            $"{actor} does not exist; {message.Kind.ToString().ToLowerInvariant()} needs an insert first"),
        _ when message.ExpectedVersion is { } expected && expected != version => new Pr2Exception(ErrorCode.VersionMismatch,
            $"{actor} is at version {version}, the message expected version {expected}"),
        _ => null,
    };

    /// <summary>The record's status after an accepted message of <paramref name="kind"/>.</summary>
    public static RecordStatus After(RecordStatus status, MessageKind kind) => kind switch
    {
        MessageKind.Cancel => RecordStatus.Canceled,
        MessageKind.Insert when status == RecordStatus.Missing => RecordStatus.Live,
        _ => status,
    };
}
