using System.Collections.Concurrent;
using Microsoft.Extensions.Configuration;
using Npgsql;

namespace PR2.Tests.Streams;

/// <summary>
/// Every entry a subscriber kept, as rows of a table (<see cref="Table"/>) in the database named by the configuration key
/// <see cref="ConnectionKey"/>, when a test sets it: the union over all activations of the subscriber. Under silo kills
/// the default grain directory can hold two activations of one grain for a while; the stream then delivers to one while a
/// call may reach the other, so asking the grain what it kept can miss entries the stream did deliver (the fault suite saw
/// it). A check of "every entry at least once" reads this table.
/// </summary>
public static class KeptLedger
{
    public const string ConnectionKey = "Pr2:Test:KeptLedger";

    public const string Table = "pr2_test_stream_kept";

    private static readonly ConcurrentDictionary<string, NpgsqlDataSource> Sources = new();

    /// <summary>Creates the table (the test does, before any silo starts).</summary>
    public static async Task CreateAsync(string connectionString)
    {
        await using var source = NpgsqlDataSource.Create(connectionString);
        await using var command = source.CreateCommand(
            $"create table if not exists {Table} (grain text not null, message_id uuid not null, primary key (grain, message_id))");
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>Records that <paramref name="grain"/> kept <paramref name="messageId"/>; nothing when the key is not set.</summary>
    public static async Task RecordAsync(IConfiguration configuration, GrainId grain, Guid messageId)
    {
        if (configuration[ConnectionKey] is not { Length: > 0 } connectionString)
        {
            return;
        }

        var source = Sources.GetOrAdd(connectionString, NpgsqlDataSource.Create);
        await using var command = source.CreateCommand($"insert into {Table} (grain, message_id) values ($1, $2) on conflict do nothing");
        command.Parameters.Add(new() { Value = grain.ToString() });
        command.Parameters.Add(new() { Value = messageId });
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>What any activation of <paramref name="grain"/> kept.</summary>
    public static async Task<HashSet<Guid>> KeptAsync(string connectionString, GrainId grain)
    {
        await using var source = NpgsqlDataSource.Create(connectionString);
        await using var command = source.CreateCommand($"select message_id from {Table} where grain = $1");
        command.Parameters.Add(new() { Value = grain.ToString() });
        await using var reader = await command.ExecuteReaderAsync();
        var kept = new HashSet<Guid>();
        while (await reader.ReadAsync())
        {
            kept.Add(reader.GetGuid(0));
        }

        return kept;
    }
}
