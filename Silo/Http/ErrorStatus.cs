using Microsoft.AspNetCore.Http;

namespace PR2.Silo.Http;

/// <summary>The HTTP status for each <see cref="ErrorCode"/>: the same codes, the status a web client expects.</summary>
public static class ErrorStatus
{
    public static int For(ErrorCode code) => code switch
    {
        ErrorCode.UnknownShard or ErrorCode.UnknownRule or ErrorCode.RecordMissing => StatusCodes.Status404NotFound,
        ErrorCode.BodyTooLarge or ErrorCode.BatchTooLarge => StatusCodes.Status413PayloadTooLarge,
        ErrorCode.ReservedActor => StatusCodes.Status403Forbidden,
        ErrorCode.ShardRemoved => StatusCodes.Status410Gone,
        ErrorCode.RecordExists or ErrorCode.RecordCanceled or ErrorCode.VersionMismatch or ErrorCode.IdempotencyConflict or ErrorCode.OperationCanceled
            => StatusCodes.Status409Conflict,
        ErrorCode.ShardUnavailable or ErrorCode.WriterFenced or ErrorCode.StaleActor or ErrorCode.SessionNotCovered or ErrorCode.Unavailable => StatusCodes.Status503ServiceUnavailable,
        _ => StatusCodes.Status400BadRequest,
    };

    /// <summary>
    /// The status of a refusal; for a refused batch, its messages' status when they agree (every one a bad request, say),
    /// 409 otherwise.
    /// </summary>
    public static int For(Pr2Exception refused) => refused.Code == ErrorCode.BatchRefused
        ? refused.Refusals.Select(r => For(r.Code)).Distinct().ToList() is [var only] ? only : StatusCodes.Status409Conflict
        : For(refused.Code);
}
