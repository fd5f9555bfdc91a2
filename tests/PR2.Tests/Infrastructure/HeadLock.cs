using Npgsql;

namespace PR2.Tests.Infrastructure;

/// <summary>
/// A fault: the writer head's row lock of one replica database held by the test, so that a group commit there waits in
/// the middle of its transaction (in flight) until the test lets it go.
/// </summary>
public sealed class HeadLock : IAsyncDisposable
{
    private readonly NpgsqlConnection _connection;
    private readonly NpgsqlTransaction _transaction;
    private readonly NpgsqlDataSource _database;
    private bool _released;

    private HeadLock(NpgsqlDataSource database, NpgsqlConnection connection, NpgsqlTransaction transaction)
    {
        _database = database;
        _connection = connection;
        _transaction = transaction;
    }

    public static async Task<HeadLock> TakeAsync(NpgsqlDataSource database)
    {
        var connection = await database.OpenConnectionAsync();
        var transaction = await connection.BeginTransactionAsync();
        await using var command = new NpgsqlCommand("select 1 from pr2_writer_head for update", connection, transaction);
        await command.ExecuteNonQueryAsync();
        return new HeadLock(database, connection, transaction);
    }

    /// <summary>Returns once some other transaction waits for the lock (a commit is in flight).</summary>
    public Task WaitForWaiterAsync() => Eventually.TrueAsync(async () =>
    {
        await using var command = _database.CreateCommand("select count(*) from pg_locks where not granted");
        return (long)(await command.ExecuteScalarAsync())! > 0;
    }, TimeSpan.FromSeconds(10), "a commit waits for the writer head's lock");

    /// <summary>Lets the waiting commit go on.</summary>
    public async Task ReleaseAsync()
    {
        if (!_released)
        {
            _released = true;
            await _transaction.RollbackAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await ReleaseAsync();
        }
        catch (NpgsqlException)
        {
            // The server went away under the test: the lock went with it.
        }

        await _connection.DisposeAsync();
    }
}
