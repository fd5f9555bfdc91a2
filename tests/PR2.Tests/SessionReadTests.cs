using System.Diagnostics;
using System.Text.Json.Nodes;
using Npgsql;
using PR2.Client;
using PR2.Grains;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// Session reads on a shard with two replicas, where replica 1 is held back on purpose (a transaction holds its
/// writer head, so anti-entropy cannot deliver): the session sees its own writes by waiting for the replica or
/// moving to the primary, never goes back in time after a newer read, and fails clearly when nobody catches up.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class SessionReadTests(PostgresFixture postgres)
{
    private const int Shard = 1;

    [Fact]
    public async Task A_session_reads_its_own_writes_from_a_lagging_replica_by_waiting_or_moving_to_the_primary()
    {
        var (settings, lagging) = TwoReplicas("session_reads");
        await using var cluster = await TestClusters.StartAsync(settings);
        var writer = new Pr2Client(cluster.Client);
        await writer.SendAsync(Shard, "note/1", MessageKind.Insert, """{"v": 1}""");
        await Eventually.TrueAsync(async () => (await writer.ReadRecordAsync(Shard, "note/1", ReadConsistency.Eventual)) is { Replica: 1, Record.Version: 1 },
            TimeSpan.FromSeconds(30), "replica 1 holds the insert");

        // 1. The replica catches up while the read waits: answered there.
        await using (var hold = await HoldBackAsync(lagging))
        {
            await writer.SendAsync(Shard, "note/1", MessageKind.Modify, """{"v": 2}""");
            var stale = await writer.ReadRecordAsync(Shard, "note/1", ReadConsistency.Eventual);
            Assert.Equal((1, 1L), (stale.Replica, stale.Record.Version)); // the lag is real: replicas other than the primary are read first

            var clock = Stopwatch.StartNew();
            var reading = writer.ReadRecordAsync(Shard, "note/1");
            await Task.Delay(TimeSpan.FromMilliseconds(250)); // the replica stays behind this long
            Assert.False(reading.IsCompleted, "the session read waited for the replica");
            await hold.ReleaseAsync();
            var read = await reading;
            Assert.Equal((1, 2L), (read.Replica, read.Record.Version));
            Assert.True(clock.Elapsed < ReadGrain.SessionWaitPerReplica, $"answered by the replica once it caught up ({clock.ElapsedMilliseconds} ms)");
        }

        // 2. The replica stays behind: after its wait the read moves to the primary.
        await using (await HoldBackAsync(lagging))
        {
            await writer.SendAsync(Shard, "note/1", MessageKind.Modify, """{"v": 3}""");
            var clock = Stopwatch.StartNew();
            var read = await writer.ReadRecordAsync(Shard, "note/1");
            Assert.Equal((0, 3L), (read.Replica, read.Record.Version));
            Assert.Equal(3, JsonNode.Parse(read.Record.State!)!["v"]!.GetValue<int>());
            Assert.True(clock.Elapsed >= ReadGrain.SessionWaitPerReplica - TimeSpan.FromMilliseconds(50), $"waited for replica 1 first ({clock.ElapsedMilliseconds} ms)");

            // 3. Monotonic reads: a session that only read version 3 (from the primary) never sees version 2 again,
            // also through a query; an eventual read still may.
            var reader = new Pr2Client(cluster.Client);
            Assert.Equal(3L, (await reader.ReadRecordAsync(Shard, "note/1", ReadConsistency.Strong)).Record.Version);
            Assert.Equal(3L, (await reader.ReadRecordAsync(Shard, "note/1")).Record.Version);
            var page = await reader.QueryRecordsAsync(Shard, "note", """{"v": 3}""");
            Assert.Equal(["note/1"], page.Records.Select(r => r.Actor.ActorId));
            Assert.Equal(2L, (await reader.ReadRecordAsync(Shard, "note/1", ReadConsistency.Eventual)).Record.Version);

            // A token handed to another client carries the session over (text form, as over HTTP).
            var other = new Pr2Client(cluster.Client);
            other.Observe(ReadToken.Parse(reader.SessionToken.ToString()));
            Assert.Equal(3L, (await other.ReadRecordAsync(Shard, "note/1")).Record.Version);
        }

        // Released: the lagging replica catches up and answers session reads again.
        await Eventually.TrueAsync(async () => (await writer.ReadRecordAsync(Shard, "note/1")) is { Replica: 1, Record.Version: 3 },
            TimeSpan.FromSeconds(30), "replica 1 serves the session again");
    }

    [Fact]
    public async Task A_session_read_no_replica_can_cover_fails_with_a_clear_error_within_the_bound()
    {
        var (settings, _) = TwoReplicas("session_uncovered");
        await using var cluster = await TestClusters.StartAsync(settings);
        var client = new Pr2Client(cluster.Client);
        var ack = await client.SendAsync(Shard, "note/1", MessageKind.Insert, "{}");

        // A token from the future of this shard (as if written to a primary whose entries were lost).
        client.Observe(ReadToken.Of(Shard, ack.Origin, ack.OriginPosition + 1000));
        var clock = Stopwatch.StartNew();
        var refused = await Assert.ThrowsAsync<Pr2Exception>(() => client.ReadRecordAsync(Shard, "note/1"));
        Assert.Equal(ErrorCode.SessionNotCovered, refused.Code);
        Assert.Contains("lacks 1000 entries", refused.Message, StringComparison.Ordinal);
        Assert.InRange(clock.Elapsed, ReadGrain.SessionWait - TimeSpan.FromMilliseconds(50), ReadGrain.SessionWait + TimeSpan.FromSeconds(5));

        // Strong and eventual reads do not depend on the token.
        Assert.Equal(1L, (await client.ReadRecordAsync(Shard, "note/1", ReadConsistency.Strong)).Record.Version);

        // The text form round-trips and refuses what it did not produce.
        var token = client.SessionToken;
        Assert.Equal(token.Parts, ReadToken.Parse(token.ToString()).Parts);
        Assert.Equal(ErrorCode.BadMessage, Assert.Throws<Pr2Exception>(() => ReadToken.Parse("not-a-token")).Code);
    }

    private (Dictionary<string, string?> Settings, NpgsqlDataSource Lagging) TwoReplicas(string prefix)
    {
        var first = postgres.CreateTopology(prefix, 0, Shard);
        var second = postgres.CreateTopology(prefix + "_r1", Shard);
        var settings = new Dictionary<string, string?>(first.Settings)
        {
            [$"Pr2:Topology:Shards:{Shard}:Replicas:1"] = second.Settings[$"Pr2:Topology:Shards:{Shard}:Replicas:0"],
        };
        return (settings, second.Database(Shard));
    }

    // Anti-entropy must lock a replica's writer head to deliver to it; holding that lock holds the replica back.
    private static async Task<HeldReplica> HoldBackAsync(NpgsqlDataSource replica)
    {
        var connection = await replica.OpenConnectionAsync();
        var transaction = await connection.BeginTransactionAsync();
        await using (var command = new NpgsqlCommand("select 1 from pr2_writer_head for update", connection, transaction))
        {
            await command.ExecuteNonQueryAsync();
        }

        return new HeldReplica(connection, transaction);
    }

    private sealed class HeldReplica(NpgsqlConnection connection, NpgsqlTransaction transaction) : IAsyncDisposable
    {
        private bool _released;

        public async Task ReleaseAsync()
        {
            if (!_released)
            {
                _released = true;
                await transaction.RollbackAsync();
                await connection.DisposeAsync();
            }
        }

        public ValueTask DisposeAsync() => new(ReleaseAsync());
    }
}
