using Npgsql;
using PR2.Grains.Storage;

namespace PR2.Grains.Backup;

/// <summary>
/// Connections for backups and restores: their own (unpooled), with no command timeout (a large table copies for
/// minutes, where the shard's pools fail fast), and errors from the server turned into answers a client understands.
/// </summary>
public static class BackupConnections
{
    /// <summary>A connection string for <paramref name="database"/> (null: the configured one) on a replica's server.</summary>
    public static string For(string replicaConnectionString, string? database = null)
    {
        var builder = new NpgsqlConnectionStringBuilder(replicaConnectionString)
        {
            Pooling = false,
            CommandTimeout = 0,
            ApplicationName = "pr2-backup",
        };
        if (database is not null)
        {
            builder.Database = database;
        }

        return builder.ConnectionString;
    }

    public static async Task<NpgsqlConnection> OpenAsync(string connectionString, CancellationToken cancellationToken)
    {
        var connection = new NpgsqlConnection(connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>Runs <paramref name="step"/>; a server that fails or does not answer becomes a retriable <see cref="Pr2Exception"/>.</summary>
    public static async Task<T> GuardAsync<T>(string what, Func<Task<T>> step)
    {
        try
        {
            return await step();
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or IOException)
        {
            throw Answer(what, e);
        }
    }

    /// <summary>
    /// A server error as a client reads it: one that says no for good (no permission to create a database, a full disk
    /// refused as such) is not worth retrying; one that did not answer or lost the connection is.
    /// </summary>
    /// The answer names the kind of failure and its SQLSTATE, not the server's text (it can quote names and settings).
    public static Pr2Exception Answer(string what, Exception e) => e is PostgresException { IsTransient: false } refused
        && refused.SqlState is not (PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CannotConnectNow or PostgresErrorCodes.CrashShutdown)
        ? new Pr2Exception(ErrorCode.BadMessage, $"{what}: the server refused ({DatabaseFailure.Describe(refused)})")
        : new Pr2Exception(ErrorCode.ShardUnavailable, $"{what}: {DatabaseFailure.Describe(e)}; retry");

    /// <summary>A database name quoted for SQL.</summary>
    public static string Quote(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}
