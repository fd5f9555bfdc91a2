using Npgsql;

namespace PR2.Tests.Infrastructure;

/// <summary>One statement against a test's database, for checks that look at what PostgreSQL holds.</summary>
public static class Sql
{
    public static async Task ExecuteAsync(NpgsqlDataSource database, string sql)
    {
        await using var command = database.CreateCommand(sql);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>The first column of the first row, as a number.</summary>
    public static async Task<long> ScalarAsync(NpgsqlDataSource database, string sql)
    {
        await using var command = database.CreateCommand(sql);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The first column of the first row, as text.</summary>
    public static async Task<string> TextAsync(NpgsqlDataSource database, string sql)
    {
        await using var command = database.CreateCommand(sql);
        return (string)(await command.ExecuteScalarAsync())!;
    }
}
