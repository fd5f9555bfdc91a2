namespace PR2;

/// <summary>Why one message of an atomic batch was refused (see <see cref="ErrorCode.BatchRefused"/>).</summary>
/// <param name="Index">The message's place in the batch, from 0.</param>
/// <param name="MessageId">The message refused.</param>
/// <param name="Code">Why, as it would have been answered had the message been sent alone at that point of the batch.</param>
/// <param name="Reason">The same, in words.</param>
[GenerateSerializer, Immutable, Alias("pr2.message-refusal.v1")]
public sealed record MessageRefusal(
    [property: Id(0)] int Index,
    [property: Id(1)] Guid MessageId,
    [property: Id(2)] ErrorCode Code,
    [property: Id(3)] string Reason)
{
    public override string ToString() => $"#{Index} ({MessageId}): {Code}: {Reason}";
}
