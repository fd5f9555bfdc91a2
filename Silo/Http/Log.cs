using Microsoft.Extensions.Logging;

namespace PR2.Silo.Http;

internal static partial class Log
{
    [LoggerMessage(EventId = 4001, Level = LogLevel.Error, Message = "HTTP request {Path} failed unexpectedly")]
    public static partial void UnexpectedHttpError(ILogger logger, Exception exception, string path);
}
