using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using PR2.Grains.Json;
using PR2.Grains.Writing;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// The writer accepts an append only at the actor's next version in the journal and refuses any other with
/// StaleActor. It remembers the versions its own commits left, so this also checks that an entry added
/// behind its back (the way anti-entropy adds one: at the head, moving it) is not hidden by what it remembers.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class WriterVersionCheckTests(PostgresFixture postgres)
{
    private const int Shard = 1;

    [Fact]
    public async Task Only_the_next_version_is_accepted_also_after_an_entry_arrived_from_elsewhere()
    {
        var topology = postgres.CreateTopology("versions", 0, Shard);
        await Migrations.MigrateAsync(topology.Settings);
        var database = topology.Database(Shard);
        await using var writer = await JournalWriter.OpenAsync(Shard, database, 100, NullLogger.Instance);
        var actor = new ActorRef(Shard, "item/1");

        Assert.Equal(1, (await writer.AppendAsync(Appends.Request(actor, MessageKind.Insert, 1))).Version);
        await AssertStaleAsync(writer.AppendAsync(Appends.Request(actor, MessageKind.Modify, 1)));
        await AssertStaleAsync(writer.AppendAsync(Appends.Request(actor, MessageKind.Modify, 3)));
        Assert.Equal(2, (await writer.AppendAsync(Appends.Request(actor, MessageKind.Modify, 2))).Version);

        await AppendElsewhereAsync(database, actor, version: 3);
        await AssertStaleAsync(writer.AppendAsync(Appends.Request(actor, MessageKind.Modify, 3)));
        var next = await writer.AppendAsync(Appends.Request(actor, MessageKind.Modify, 4));
        Assert.Equal((4L, 4L), (next.Version, next.Position));
    }

    private static async Task AssertStaleAsync(Task<WriteAck> append)
    {
        var refused = await Assert.ThrowsAsync<Pr2Exception>(() => append);
        Assert.Equal(ErrorCode.StaleActor, refused.Code);
    }

    // Another replica's entry for the actor, added as anti-entropy adds one: the head locked and moved on.
    private static async Task AppendElsewhereAsync(NpgsqlDataSource database, ActorRef actor, long version)
    {
        await using var connection = await database.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using var command = new NpgsqlCommand("""
            with head as (select position + 1 as position, clock + 1 as clock from pr2_writer_head for update),
            entry as (
                insert into pr2_journal (position, message_id, lamport_counter, lamport_shard, origin_replica, origin_position,
                                         actor_id, kind, actor_version, body, content_hash, sender)
                select position, gen_random_uuid(), clock, 2, gen_random_uuid(), 1, $1, 2, $2, '{"elsewhere": true}', '\x00', 'replica-2'
                from head)
            update pr2_writer_head set position = head.position, clock = head.clock from head
            """, connection, transaction);
        command.Parameters.Add(new NpgsqlParameter { Value = actor.ActorId });
        command.Parameters.Add(new NpgsqlParameter { Value = version });
        await command.ExecuteNonQueryAsync();
        await transaction.CommitAsync();
    }
}
