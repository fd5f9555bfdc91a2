using Npgsql;
using PR2.Grains.Agents;
using PR2.Grains.Projections;
using PR2.Grains.Records;
using PR2.Grains.Storage;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// The records view rebuild's steps on a real replica database (<see cref="RecordsRebuild"/>), each where the live view
/// stands somewhere a running cluster puts it: a restamp recorded mid-rebuild, a live agent lagging behind the shadow,
/// an empty journal, a migration between start and swap, a backup holding the view.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class RecordsRebuildTests(PostgresFixture postgres)
{
    private const int Shard = 1;

    [Fact]
    public async Task A_restamp_recorded_while_a_rebuild_folds_reaches_the_rebuilt_view()
    {
        var (database, registry) = await DatabaseAsync("rebuild_restamp");
        var insert = await DirectJournal.AppendAsync(database, Shard, 1, "acct/c", MessageKind.Insert, 5, 1);
        await DirectJournal.AppendAsync(database, Shard, 2, "acct/c", MessageKind.Modify, 7, 2);
        await Live(registry).CatchUpAsync();

        // The rebuild's fold has passed the insert when the replicas agree on 3@1 for it.
        Assert.Equal(1L, await RecordsRebuild.StartAsync(database, Shard));
        await Shadow(registry).CatchUpAsync();
        await DirectJournal.RestampAsync(database, Shard, insert.MessageId, 3);

        Assert.Equal((SwapOutcome.Swapped, 2L), await SwapAsync(database));
        Assert.Equal(new LamportStamp(3, Shard), (await RecordStore.ReadAsync(database, "acct/c")).FirstStamp);
        await Live(registry).CatchUpAsync();
        var record = await RecordStore.ReadAsync(database, "acct/c");
        Assert.Equal((new LamportStamp(3, Shard), new LamportStamp(7, Shard), 2L), (record.FirstStamp, record.LastStamp, record.Version));
    }

    [Fact]
    public async Task A_shadow_ahead_of_a_lagging_live_agent_is_swapped_in_and_the_agent_goes_on_from_it()
    {
        var (database, registry) = await DatabaseAsync("rebuild_ahead");
        for (var position = 1; position <= 3; position++)
        {
            await DirectJournal.AppendAsync(database, Shard, position, "acct/d", position == 1 ? MessageKind.Insert : MessageKind.Modify, 10 + position, position);
        }

        // The live agent has applied one entry (a secondary's agent lags its journal); the shadow has folded all three.
        await new AgentRunner(new RecordsProjector(), Shard, registry, new NoAgentFaults(), batchSize: 1).RunOnceAsync();
        await RecordsRebuild.StartAsync(database, Shard);
        await Shadow(registry).CatchUpAsync();

        Assert.Equal((SwapOutcome.Swapped, 3L), await SwapAsync(database));
        Assert.Equal(3L, await AgentMarks.ReadAsync(database, RecordsProjector.AgentName, Shard));
        await DirectJournal.AppendAsync(database, Shard, 4, "acct/d", MessageKind.Modify, 14, 4);
        await Live(registry).CatchUpAsync();
        var record = await RecordStore.ReadAsync(database, "acct/d");
        Assert.Equal((4L, 4L, new LamportStamp(14, Shard)), (record.Version, record.LastPosition, record.LastStamp));
    }

    [Fact]
    public async Task A_rebuild_of_an_empty_journal_is_swapped_in()
    {
        var (database, registry) = await DatabaseAsync("rebuild_empty");
        await RecordsRebuild.StartAsync(database, Shard);
        await Shadow(registry).CatchUpAsync();
        Assert.Equal((SwapOutcome.Swapped, 0L), await SwapAsync(database));
        Assert.Equal("done", (await RecordsRebuild.StatusAsync(database, Shard, 0)).State);
    }

    [Fact]
    public async Task A_migration_between_start_and_swap_starts_the_rebuild_over_and_the_swap_keeps_it()
    {
        var (database, registry) = await DatabaseAsync("rebuild_migrated");
        await DirectJournal.AppendAsync(database, Shard, 1, "acct/e", MessageKind.Insert, 5, 1);
        await RecordsRebuild.StartAsync(database, Shard);
        await Shadow(registry).CatchUpAsync();

        // A later migration adds a column and an index to the live view only.
        await Sql.ExecuteAsync(database, "alter table pr2_record add column note text");
        await Sql.ExecuteAsync(database, "create index pr2_record_note on pr2_record (note)");

        Assert.Equal(SwapOutcome.Restarted, (await SwapAsync(database)).Outcome);
        Assert.Equal(0L, (await RecordsRebuild.StatusAsync(database, Shard, 0)).Folded);
        await Shadow(registry).CatchUpAsync();
        Assert.Equal((SwapOutcome.Swapped, 1L), await SwapAsync(database));
        Assert.Equal(1L, await Sql.ScalarAsync(database, "select count(*) from pg_attribute where attrelid = 'pr2_record'::regclass and attname = 'note'"));
        Assert.Equal(1L, await Sql.ScalarAsync(database, "select count(*) from pg_indexes where tablename = 'pr2_record' and indexname = 'pr2_record_note'"));
        Assert.Equal(1L, (await RecordStore.ReadAsync(database, "acct/e")).Version);
    }

    [Fact]
    public async Task A_swap_waits_for_a_backup_holding_the_view_without_holding_the_mark()
    {
        var (database, registry) = await DatabaseAsync("rebuild_busy");
        await DirectJournal.AppendAsync(database, Shard, 1, "acct/f", MessageKind.Insert, 5, 1);
        await Live(registry).CatchUpAsync();
        await RecordsRebuild.StartAsync(database, Shard);
        await Shadow(registry).CatchUpAsync();

        // A long reader of the view (as a backup's snapshot), open for more than a second.
        await using var reader = await database.OpenConnectionAsync();
        await using var snapshot = await reader.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead);
        await RecordStore.LockLiveAsync(reader, snapshot);
        await Eventually.TrueAsync(async () => await Sql.ScalarAsync(database,
            "select count(*) from pg_stat_activity where xact_start < now() - interval '1 second' and pid <> pg_backend_pid() and state like 'idle in transaction%'") > 0,
            TimeSpan.FromSeconds(10), "the reader's transaction open for a second");

        var busy = await RecordsRebuild.TrySwapAsync(database, Shard, 0);
        Assert.Equal(SwapOutcome.Busy, busy.Outcome);
        Assert.Contains("held by pid", busy.Busy, StringComparison.Ordinal);
        // Nothing of the attempt is left locked: the live mark can be taken at once.
        await using (var probe = await database.OpenConnectionAsync())
        await using (var probing = await probe.BeginTransactionAsync())
        {
            await using var nowait = new NpgsqlCommand($"select position from pr2_agent_mark where agent = '{RecordsProjector.AgentName}' and shard = {Shard} for update nowait", probe, probing);
            await nowait.ExecuteScalarAsync();
        }

        await snapshot.CommitAsync();

        // A schema migration running (its lock held) makes the swap wait too: a change it makes must not be lost in the swap.
        await using (var migrating = await database.OpenConnectionAsync())
        {
            await using (var take = new NpgsqlCommand($"select pg_advisory_lock({SchemaMigrator.MigrationLockKey})", migrating))
            {
                await take.ExecuteNonQueryAsync();
            }

            var waiting = await RecordsRebuild.TrySwapAsync(database, Shard, 0);
            Assert.Equal((SwapOutcome.Busy, "a schema migration is running"), (waiting.Outcome, waiting.Busy));
            await using var release = new NpgsqlCommand($"select pg_advisory_unlock({SchemaMigrator.MigrationLockKey})", migrating);
            await release.ExecuteNonQueryAsync();
        }

        Assert.Equal((SwapOutcome.Swapped, 1L), await SwapAsync(database));
    }

    [Fact]
    public async Task A_start_finds_the_rebuild_in_progress_and_a_restart_begins_it_again()
    {
        var (database, registry) = await DatabaseAsync("rebuild_restart");
        await DirectJournal.AppendAsync(database, Shard, 1, "acct/g", MessageKind.Insert, 5, 1);
        Assert.Equal(1L, await RecordsRebuild.StartAsync(database, Shard));
        await Shadow(registry).CatchUpAsync();
        Assert.Equal(1L, await RecordsRebuild.StartAsync(database, Shard));
        Assert.Equal(1L, (await RecordsRebuild.StatusAsync(database, Shard, 0)).Folded);

        Assert.Equal(2L, await RecordsRebuild.StartAsync(database, Shard, restart: true));
        Assert.Equal(("building", 0L), ((await RecordsRebuild.StatusAsync(database, Shard, 0)).State, (await RecordsRebuild.StatusAsync(database, Shard, 0)).Folded));
        await Shadow(registry).CatchUpAsync();
        Assert.Equal((SwapOutcome.Swapped, 1L), await SwapAsync(database));
        Assert.Equal(3L, await RecordsRebuild.StartAsync(database, Shard));
    }

    private static async Task<(SwapOutcome Outcome, long Position)> SwapAsync(NpgsqlDataSource database)
    {
        var (outcome, position, _) = await RecordsRebuild.TrySwapAsync(database, Shard, 0);
        return (outcome, position);
    }

    private static AgentRunner Live(ShardRegistry registry) => new(new RecordsProjector(), Shard, registry, new NoAgentFaults());

    private static AgentRunner Shadow(ShardRegistry registry) => new(new RecordsProjector(table: RecordStore.Next), Shard, registry, new NoAgentFaults());

    private async Task<(NpgsqlDataSource Database, ShardRegistry Registry)> DatabaseAsync(string prefix)
    {
        var topology = postgres.CreateTopology(prefix, 0, Shard);
        await Migrations.MigrateAsync(topology.Settings);
        return (topology.Database(Shard), Migrations.Registry(topology.Settings));
    }
}
