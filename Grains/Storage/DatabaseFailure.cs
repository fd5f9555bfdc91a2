using Npgsql;

namespace PR2.Grains.Storage;

/// <summary>
/// PR2's own words for a failed database call, for refusals that reach callers: the server's text (which can quote
/// data, names and settings) goes to the silo's log, the caller gets the kind of failure and the SQLSTATE code.
/// </summary>
public static class DatabaseFailure
{
    public static string Describe(Exception e) => e switch
    {
        PostgresException pg => $"PostgreSQL error {pg.SqlState}",
        NpgsqlException { InnerException: TimeoutException } or TimeoutException or OperationCanceledException => "no answer in time",
        NpgsqlException { InnerException: System.Net.Sockets.SocketException or IOException } => "connection failed",
        NpgsqlException => "database connection error",
        _ => e.GetType().Name,
    };
}
