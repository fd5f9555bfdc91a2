using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Logging;
using PR2.Client;

namespace PR2.Silo.Http;

/// <summary>
/// Turns refusals into RFC 9457 problem details: <c>code</c> is the <see cref="ErrorCode"/> name (as the Orleans
/// client sees it), <c>retriable</c> says whether sending the same request again may succeed (with
/// <c>Retry-After</c>), <c>detail</c> is the refusal's own message.
/// </summary>
public sealed class ProblemExceptionHandler(IProblemDetailsService problems, ILogger<ProblemExceptionHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext http, Exception exception, CancellationToken cancellationToken)
    {
        var (status, code, retriable, detail) = exception switch
        {
            Pr2Exception refused => (ErrorStatus.For(refused), refused.Code.ToString(), refused.IsRetriable, refused.Message),
            AccessDeniedException denied => (StatusCodes.Status403Forbidden, "Forbidden", false, denied.Message),
            TooManyStreamsException many => (StatusCodes.Status429TooManyRequests, "TooManyStreams", true, many.Message),
            BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge } => (StatusCodes.Status413PayloadTooLarge, nameof(ErrorCode.BodyTooLarge), false,
                "the request is larger than this API accepts (four times Pr2:Write:MaxBodyBytes, plus 64 KiB for the envelope)"),
            BadHttpRequestException bad => (bad.StatusCode, "BadRequest", false, bad.Message),
            // Orleans' own text names silos and grains: it goes to the log, not to callers. A call cut short by a failed
            // silo can surface as a cancellation the caller never asked for: the same answer.
            _ when UnavailableCluster.Is(exception, http.RequestAborted) =>
                (StatusCodes.Status503ServiceUnavailable, nameof(ErrorCode.Unavailable), true, UnavailableCluster.Message),
            _ => (StatusCodes.Status500InternalServerError, "Internal", false, "an unexpected error; the silo log has the details"),
        };
        if (status >= 500 && exception is not Pr2Exception)
        {
            Log.UnexpectedHttpError(logger, exception, http.Request.Path);
        }

        http.Response.StatusCode = status;
        if (retriable)
        {
            http.Response.Headers.RetryAfter = "1";
        }

        var problem = new ProblemDetails
        {
            Status = status,
            Type = $"urn:pr2:error:{code}",
            Title = code,
            Detail = detail,
            Extensions = { ["code"] = code, ["retriable"] = retriable },
        };
        if (exception is Pr2Exception { Refusals.Length: > 0 } batch)
        {
            // A refused batch: every refused message, by its place in the batch.
            problem.Extensions["refusals"] = batch.Refusals.Select(r => new { index = r.Index, messageId = r.MessageId, code = r.Code.ToString(), reason = r.Reason }).ToList();
        }

        return await problems.TryWriteAsync(new ProblemDetailsContext { HttpContext = http, Exception = exception, ProblemDetails = problem });
    }
}
