namespace PR2;

/// <summary>
/// A refused request. Crosses the Orleans boundary intact: callers switch on <see cref="Code"/> and show
/// <see cref="Exception.Message"/>, which names what was wrong.
/// </summary>
[GenerateSerializer, Alias("pr2.error.v1")]
public sealed class Pr2Exception : Exception
{
    public Pr2Exception(ErrorCode code, string message) : base(message) => Code = code;

    public Pr2Exception(ErrorCode code, string message, Exception innerException) : base(message, innerException) => Code = code;

    /// <summary>An atomic batch refused for the reasons of its messages (<see cref="ErrorCode.BatchRefused"/>).</summary>
    public Pr2Exception(MessageRefusal[] refusals, int batchSize)
        : base($"the batch of {batchSize} messages was refused, nothing of it was written: " +
               string.Join("; ", refusals.Take(5).Select(r => r.ToString())) + (refusals.Length > 5 ? $"; and {refusals.Length - 5} more" : ""))
    {
        Code = ErrorCode.BatchRefused;
        Refusals = refusals;
    }

    public Pr2Exception() : this(ErrorCode.BadMessage, "unspecified error")
    {
    }

    public Pr2Exception(string message) : this(ErrorCode.BadMessage, message)
    {
    }

    public Pr2Exception(string message, Exception innerException) : base(message, innerException) => Code = ErrorCode.BadMessage;

    /// <summary>Why the request was refused.</summary>
    [Id(0)]
    public ErrorCode Code { get; private set; }

    /// <summary>For <see cref="ErrorCode.BatchRefused"/>: each refused message of the batch and why; empty otherwise.</summary>
    [Id(1)]
    public MessageRefusal[] Refusals { get; private set; } = [];

    /// <summary>True when the same message (same MessageId) may simply be sent again.</summary>
    public bool IsRetriable => Code is ErrorCode.ShardUnavailable or ErrorCode.WriterFenced or ErrorCode.StaleActor or ErrorCode.SessionNotCovered or ErrorCode.Unavailable;

    public override string ToString() => $"{Code}: {Message}";
}
