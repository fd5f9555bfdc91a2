namespace PR2.Silo.Http;

/// <summary>A caller asked for more concurrent change streams than it may hold (HTTP 429, retriable once one closes).</summary>
public sealed class TooManyStreamsException(string message) : Exception(message)
{
    public TooManyStreamsException() : this("too many open change streams")
    {
    }

    public TooManyStreamsException(string message, Exception innerException) : this(message) => _ = innerException;
}
