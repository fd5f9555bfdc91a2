using PR2.Client;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// Reads cannot break writes: callers' reads take connections from pools of their own, so reads that pile up (here,
/// stuck behind a lock on the records view, more of them than the pool holds) leave the writer its connections. When
/// they shared a pool, the writer waited for a connection, timed out, took that for a lost database and refused writes.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ReadIsolationTests(PostgresFixture postgres)
{
    private const int Shard = 1;

    [Fact]
    public async Task Reads_that_exhaust_their_pool_leave_every_write_acknowledged()
    {
        var topology = postgres.CreateTopology("read_isolation", 0, Shard);
        var settings = new Dictionary<string, string?>(topology.Settings);
        settings[$"Pr2:Topology:Shards:{Shard}:Replicas:0"] += ";Maximum Pool Size=4";
        await using var cluster = await TestClusters.StartAsync(settings);
        var client = new Pr2Client(cluster.Client);
        await client.SendAsync(Shard, "order/w", MessageKind.Insert, "{}");

        await using var blocker = await topology.Database(Shard).OpenConnectionAsync();
        await using var hold = await blocker.BeginTransactionAsync();
        await using (var lockRecords = new Npgsql.NpgsqlCommand("lock table pr2_record in access exclusive mode", blocker, hold))
        {
            await lockRecords.ExecuteNonQueryAsync();
        }

        // More eventual reads than the pool holds, kept coming: each waits on the lock with a connection, or for one.
        using var stop = new CancellationTokenSource();
        var readers = Enumerable.Range(0, 12).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    await client.ReadRecordAsync(Shard, "order/w", ReadConsistency.Eventual);
                }
                catch (Exception e) when (e is Pr2Exception or TimeoutException)
                {
                    // Refused (no replica answered in time): expected while the lock is held.
                }
            }
        })).ToList();
        await Eventually.TrueAsync(async () => await topology.ScalarAsync(Shard, "select count(*) from pg_stat_activity where application_name like 'pr2%' and wait_event_type = 'Lock'") >= 3,
            TimeSpan.FromSeconds(10), "reads wait on the lock");

        var failures = new List<string>();
        for (var i = 0; i < 20; i++)
        {
            try
            {
                await client.SendAsync(Shard, "order/w", MessageKind.Modify, $$"""{"i": {{i}}}""");
            }
            catch (Pr2Exception e)
            {
                failures.Add($"{e.Code}: {e.Message}");
            }
        }

        await stop.CancelAsync();
        await hold.RollbackAsync();
        await Task.WhenAll(readers);
        Assert.True(failures.Count == 0, $"{failures.Count} of 20 writes refused while reads exhausted their pool: {failures.FirstOrDefault()}");
        Assert.Equal(21, (await client.ReadRecordAsync(Shard, "order/w", ReadConsistency.Strong)).Record.Version);
    }
}
