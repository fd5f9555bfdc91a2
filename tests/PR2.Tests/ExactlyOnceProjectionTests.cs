using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;
using PR2.Client;
using PR2.Grains.Agents;
using PR2.Grains.Records;
using PR2.Grains.Storage;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// Agents are crashed between their effects and their mark on every batch (a fault hook in the test
/// configuration), then the whole cluster is restarted: no entry is applied twice or skipped, and no
/// mark ever goes backwards. Besides the records agent (whose fold would also absorb a replay), a test
/// agent that appends one row per entry makes any double or missing application visible.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ExactlyOnceProjectionTests(PostgresFixture postgres)
{
    private static readonly int[] Shards = [1, 2];

    [Fact]
    public async Task Crashing_the_projection_between_effect_and_mark_applies_every_entry_exactly_once()
    {
        var topology = postgres.CreateTopology("exactly_once", 0, 1, 2);
        // Every entry goes through the records agent (the writer projecting records itself would leave it nothing to crash).
        topology.Settings["Pr2:Write:ProjectRecordsInline"] = "false";
        var faults = new CrashEachBatchOnce(RecordsProjector.AgentName, EntryLogAgent.AgentName);
        var actors = Enumerable.Range(0, 40).Select(i => new ActorRef(Shards[i % 2], $"ledger/{i}")).ToList();
        var marks = new ConcurrentQueue<(int Shard, long Mark)>();

        await using (var cluster = await StartAsync(topology, faults))
        {
            using var sampling = new CancellationTokenSource();
            var sampler = SampleMarksAsync(topology, marks, sampling.Token);
            var client = new Pr2Client(cluster.Client);
            // Catching up after each wave keeps the waves in separate batches, so each is crashed once: how many
            // crashes there are does not depend on how fast the writes come compared with the agents.
            await WriteWavesAsync(client, actors, firstWave: 0, waves: 6, afterEach: () => WaitUntilCaughtUpAsync(client));
            await sampling.CancelAsync();
            await sampler;
        }

        Assert.True(faults.Crashes >= 12, $"only {faults.Crashes} injected crashes");
        await AssertRecordsAreTheFoldOfTheJournalAsync(topology, actors);
        await AssertEveryEntryLoggedOnceAsync(topology);

        // A full restart (no faults now): the agents go on from their marks.
        await using (var cluster = await StartAsync(topology, faults: null))
        {
            var client = new Pr2Client(cluster.Client);
            await WriteWavesAsync(client, actors, firstWave: 6, waves: 2);
            await WaitUntilCaughtUpAsync(client);
        }

        await AssertRecordsAreTheFoldOfTheJournalAsync(topology, actors);
        await AssertEveryEntryLoggedOnceAsync(topology);
        foreach (var shard in Shards)
        {
            var sampled = marks.Where(m => m.Shard == shard).Select(m => m.Mark).ToList();
            Assert.NotEmpty(sampled);
            Assert.True(sampled.Zip(sampled.Skip(1)).All(p => p.First <= p.Second), $"shard {shard}: a mark went backwards");
        }
    }

    private static Task<InProcessTestCluster> StartAsync(TestTopology topology, IAgentFaultInjector? faults) =>
        TestClusters.StartAsync(topology.Settings, configureSilo: silo =>
        {
            silo.Services.AddSingleton<IJournalAgent, EntryLogAgent>();
            if (faults is not null)
            {
                silo.Services.AddSingleton(faults);
            }
        });

    // Each wave: every actor gets one message; the first wave inserts. Waves make many separate commits.
    private static async Task WriteWavesAsync(Pr2Client client, List<ActorRef> actors, int firstWave, int waves, Func<Task>? afterEach = null)
    {
        for (var wave = firstWave; wave < firstWave + waves; wave++)
        {
            await Task.WhenAll(actors.Select(actor => client.SendAsync(actor.Shard, actor.ActorId,
                wave == 0 ? MessageKind.Insert : MessageKind.Modify, $$"""{"wave": {{wave}}, "w{{wave}}": true}""")));
            if (afterEach is not null)
            {
                await afterEach();
            }
        }
    }

    private static Task WaitUntilCaughtUpAsync(Pr2Client client) =>
        Eventually.TrueAsync(async () =>
        {
            var status = await client.GetStatusAsync();
            return status.Shards.All(s => s.Agents.All(a => a.Lag == 0));
        }, TimeSpan.FromSeconds(60), "records agent caught up on every shard");

    private static async Task SampleMarksAsync(TestTopology topology, ConcurrentQueue<(int, long)> marks, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            foreach (var shard in Shards)
            {
                marks.Enqueue((shard, await AgentMarks.ReadAsync(topology.Database(shard), RecordsProjector.AgentName, shard, CancellationToken.None)));
            }

            try
            {
                await Task.Delay(20, stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private static async Task AssertRecordsAreTheFoldOfTheJournalAsync(TestTopology topology, List<ActorRef> actors)
    {
        foreach (var actor in actors)
        {
            var database = topology.Database(actor.Shard);
            var expected = RecordState.Fold(await JournalStore.ReadActorAsync(database, actor));
            var stored = await RecordStore.ReadAsync(database, actor.ActorId);
            Assert.Equal((expected.Status, expected.Version, expected.LastStamp, expected.LastPosition),
                (stored.Status, stored.Version, stored.LastStamp, stored.LastPosition));
            Assert.True(SameJson.As(expected.State, stored.State), $"{actor}: state differs");
        }
    }

    private static async Task AssertEveryEntryLoggedOnceAsync(TestTopology topology)
    {
        foreach (var shard in Shards)
        {
            var head = await topology.ScalarAsync(shard, "select position from pr2_writer_head");
            Assert.True(head > 0);
            Assert.Equal(head, await topology.ScalarAsync(shard, "select count(*) from test_entry_log"));
            Assert.Equal(head, await topology.ScalarAsync(shard, "select count(distinct position) from test_entry_log where position between 1 and $1", head));
        }
    }

    /// <summary>A deliberately non-idempotent agent: one row per entry applied, no uniqueness.</summary>
    private sealed class EntryLogAgent : IJournalAgent
    {
        public const string AgentName = "test-entry-log";

        public string Name => AgentName;

        public bool Follows(int shard) => shard != 0;

        public bool PerReplica => false;

        public int HomeShard(int sourceShard) => sourceShard;

        public async Task ApplyAsync(AgentBatch batch, IReadOnlyList<JournalEntry> entries, Npgsql.NpgsqlConnection connection, Npgsql.NpgsqlTransaction transaction, CancellationToken cancellationToken)
        {
            await using (var create = new Npgsql.NpgsqlCommand("create table if not exists test_entry_log (position bigint not null)", connection, transaction))
            {
                await create.ExecuteNonQueryAsync(cancellationToken);
            }

            await using var command = new Npgsql.NpgsqlCommand("insert into test_entry_log (position) select unnest($1::bigint[])", connection, transaction);
            command.Parameters.Add(new Npgsql.NpgsqlParameter { Value = entries.Select(e => e.Position).ToArray() });
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
    }
}
