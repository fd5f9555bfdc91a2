using Npgsql;

namespace PR2.Grains.Storage;

/// <summary>Creates a replica database that does not exist yet, through the server's maintenance database.</summary>
public static class DatabaseCreator
{
    /// <summary>Whether the database exists (throws when its server does not answer).</summary>
    public static async Task<bool> ExistsAsync(string connectionString, CancellationToken cancellationToken)
    {
        try
        {
            await using var probe = new NpgsqlConnection(connectionString);
            await probe.OpenAsync(cancellationToken);
            return true;
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InvalidCatalogName)
        {
            return false;
        }
    }

    public static async Task EnsureExistsAsync(string connectionString, CancellationToken cancellationToken)
    {
        try
        {
            await using var probe = new NpgsqlConnection(connectionString);
            await probe.OpenAsync(cancellationToken);
            return;
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InvalidCatalogName)
        {
            // Missing: create it below.
        }

        var target = new NpgsqlConnectionStringBuilder(connectionString);
        var maintenance = new NpgsqlConnectionStringBuilder(connectionString) { Database = "postgres", Pooling = false };
        await using var connection = new NpgsqlConnection(maintenance.ConnectionString);
        await connection.OpenAsync(cancellationToken);
        var quoted = "\"" + target.Database!.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
        await using var create = new NpgsqlCommand($"create database {quoted}", connection);
        try
        {
            await create.ExecuteNonQueryAsync(cancellationToken);
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.DuplicateDatabase or PostgresErrorCodes.UniqueViolation)
        {
            // Another silo created it first.
        }
    }
}
