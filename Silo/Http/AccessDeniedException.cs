namespace PR2.Silo.Http;

/// <summary>An authenticated caller asked for a shard its credentials do not cover (HTTP 403).</summary>
public sealed class AccessDeniedException(string message) : Exception(message)
{
    public AccessDeniedException() : this("access denied")
    {
    }

    public AccessDeniedException(string message, Exception innerException) : this(message) => _ = innerException;
}
