using Npgsql;
using PR2.Grains.Json;

namespace PR2.Tests.Infrastructure;

/// <summary>Journal entries and restamps written straight into a replica database, as the writer and anti-entropy write them.</summary>
public static class DirectJournal
{
    public static async Task<JournalEntry> AppendAsync(NpgsqlDataSource database, int shard, long position, string actorId, MessageKind kind, long counter, long version)
    {
        var entry = new JournalEntry(position, Guid.NewGuid(), new LamportStamp(counter, shard), Guid.NewGuid(), position,
            new ActorRef(shard, actorId), kind, version, $$"""{"n": {{counter}}}""", "test", null, DateTimeOffset.UtcNow);
        await using var command = database.CreateCommand("""
            insert into pr2_journal (position, message_id, lamport_counter, lamport_shard, origin_replica, origin_position,
                                     actor_id, kind, actor_version, body, content_hash, sender)
            values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, 'test')
            """);
        foreach (var value in new object[]
        {
            position, entry.MessageId, counter, shard, entry.OriginReplica, position, actorId, (short)kind, version, entry.Body,
            MessageBody.ContentHash(entry.Actor, kind, entry.Body),
        })
        {
            command.Parameters.Add(new NpgsqlParameter { Value = value });
        }

        await command.ExecuteNonQueryAsync();
        await using var head = database.CreateCommand("update pr2_writer_head set position = $1, clock = greatest(clock, $2)");
        head.Parameters.Add(new NpgsqlParameter { Value = position });
        head.Parameters.Add(new NpgsqlParameter { Value = counter });
        await head.ExecuteNonQueryAsync();
        return entry;
    }

    public static async Task RestampAsync(NpgsqlDataSource database, int shard, Guid messageId, long counter)
    {
        await using var command = database.CreateCommand("insert into pr2_restamp (message_id, lamport_counter, lamport_shard) values ($1, $2, $3)");
        command.Parameters.Add(new NpgsqlParameter { Value = messageId });
        command.Parameters.Add(new NpgsqlParameter { Value = counter });
        command.Parameters.Add(new NpgsqlParameter { Value = shard });
        await command.ExecuteNonQueryAsync();
    }
}
