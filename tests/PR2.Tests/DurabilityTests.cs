using Npgsql;
using PR2.Client;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// Acknowledged means durable: everything acknowledged is still there after the whole cluster is torn
/// down and PostgreSQL is killed without a checkpoint (as if the machine lost power), then restarted.
/// </summary>
public sealed class DurabilityTests : IAsyncLifetime
{
    private readonly PostgresFixture _postgres = new();

    public Task InitializeAsync() => _postgres.InitializeAsync();

    public Task DisposeAsync() => _postgres.DisposeAsync();

    [Fact]
    public async Task Acknowledged_entries_survive_a_cluster_teardown_and_a_postgres_crash()
    {
        var topology = _postgres.CreateTopology("durable", 0, 1, 2);
        var actors = Enumerable.Range(0, 30).Select(i => new ActorRef(1 + (i % 2), $"account/{i}")).ToList();
        var acks = new List<WriteAck>();

        await using (var cluster = await TestClusters.StartAsync(topology.Settings))
        {
            var client = new Pr2Client(cluster.Client);
            foreach (var round in Enumerable.Range(0, 5))
            {
                acks.AddRange(await Task.WhenAll(actors.Select(actor => client.SendAsync(
                    actor.Shard, actor.ActorId, round == 0 ? MessageKind.Insert : MessageKind.Modify, $$"""{"balance": {{round * 10}}}"""))));
            }
        }

        // No clean shutdown: whatever was only in memory is gone.
        NpgsqlConnection.ClearAllPools();
        await _postgres.Server.StopAsync("immediate");
        await _postgres.Server.StartAgainAsync();

        await using (var cluster = await TestClusters.StartAsync(topology.Settings))
        {
            var client = new Pr2Client(cluster.Client);
            foreach (var ack in acks)
            {
                var entry = await FindAsync(topology.Database(ack.Actor.Shard), ack.MessageId);
                Assert.NotNull(entry);
                Assert.Equal((ack.Position, ack.Stamp.Counter, ack.Version), entry.Value);
            }

            foreach (var actor in actors)
            {
                var record = await client.GetRecordAsync(actor.Shard, actor.ActorId);
                Assert.Equal((RecordStatus.Live, 5L, """{"balance":40}"""), (record.Status, record.Version, record.State));
            }

            // The restored writer continues the sequence: no reuse of positions, the clock moved on.
            var next = await client.SendAsync(1, "account/0", MessageKind.Modify, """{"balance": 50}""");
            var lastOnShard1 = acks.Where(a => a.Actor.Shard == 1).MaxBy(a => a.Position)!;
            Assert.Equal(lastOnShard1.Position + 1, next.Position);
            Assert.True(next.Stamp.Counter > lastOnShard1.Stamp.Counter);
        }
    }

    private static async Task<(long Position, long Counter, long Version)?> FindAsync(NpgsqlDataSource database, Guid messageId)
    {
        await using var command = database.CreateCommand("select position, lamport_counter, actor_version from pr2_journal where message_id = $1");
        command.Parameters.Add(new NpgsqlParameter { Value = messageId });
        await using var reader = await command.ExecuteReaderAsync();
        return await reader.ReadAsync() ? (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2)) : null;
    }
}
