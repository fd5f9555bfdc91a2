using Npgsql;
using PR2.Grains.Agents;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>Agents follow the journals: the records view, the object directory, marks and lag in the status.</summary>
[Collection(SharedClusterCollection.Name)]
public sealed class AgentTests(SharedClusterFixture fixture)
{
    [Fact]
    public async Task The_records_view_holds_what_the_actor_holds_once_the_agent_caught_up()
    {
        var live = SharedClusterFixture.NewActorId("customer");
        var canceled = SharedClusterFixture.NewActorId("customer");
        await fixture.Client.SendAsync(2, live, MessageKind.Insert, """{"name": "Ann", "tier": {"level": 1}}""");
        await fixture.Client.SendAsync(2, live, MessageKind.Modify, """{"tier": {"level": 2, "since": "2026"}}""");
        await fixture.Client.SendAsync(2, canceled, MessageKind.Insert, """{"name": "Bob"}""");
        await fixture.Client.SendAsync(2, canceled, MessageKind.Cancel, """{"reason": "duplicate"}""");

        await fixture.Client.CatchUpAsync(RecordsProjector.AgentName, 2);

        foreach (var actor in new[] { live, canceled })
        {
            var expected = await fixture.Client.GetRecordAsync(2, actor);
            var row = await ReadRecordRowAsync(fixture.Topology.Database(2), actor);
            Assert.Equal(((short)expected.Status, expected.Version, expected.LastStamp!.Value.Counter, expected.LastPosition),
                (row.Status, row.Version, row.LastCounter, row.LastPosition));
            // jsonb orders members its own way: compare the JSON values, not the text.
            Assert.True(SameJson.As(expected.State, row.State), $"{expected.State} != {row.State}");
        }
    }

    [Fact]
    public async Task After_a_burst_every_agent_mark_meets_the_journal_head_without_being_asked()
    {
        var writes = Enumerable.Range(0, 300).Select(i =>
            fixture.Client.SendAsync(1 + (i % 3), SharedClusterFixture.NewActorId("burst"), MessageKind.Insert, $$"""{"i": {{i}}}"""));
        await Task.WhenAll(writes);

        // Woken by the writers after each commit (or by their timers): no CatchUp call here.
        await Eventually.TrueAsync(async () =>
        {
            var status = await fixture.Client.GetStatusAsync();
            return status.Shards.All(s => s.Head >= 0 && s.Agents.Count == 2 && s.Agents.All(a => a.Lag == 0 && a.Mark == s.Head));
        }, TimeSpan.FromSeconds(30), "all agents caught up with all heads");

        var final = await fixture.Client.GetStatusAsync();
        Assert.Equal([0, 1, 2, 3], final.Shards.Select(s => s.Shard));
        foreach (var shard in final.Shards)
        {
            Assert.Equal(await fixture.Topology.ScalarAsync(shard.Shard, "select position from pr2_writer_head"), shard.Head);
            Assert.True(shard.Replicas.Single().Reachable);
        }
    }

    [Fact]
    public async Task The_object_directory_in_shard_0_lists_actors_from_every_shard()
    {
        var type = "dir" + Guid.NewGuid().ToString("N")[..8];
        var actors = new[] { 0, 1, 2, 3 }.Select(shard => new ActorRef(shard, $"{type}/k{shard}")).ToList();
        foreach (var actor in actors)
        {
            await fixture.Client.SendAsync(actor.Shard, actor.ActorId, MessageKind.Insert, "{}");
        }

        await fixture.Client.SendAsync(3, $"{type}/k3", MessageKind.Cancel, "{}");
        foreach (var shard in new[] { 0, 1, 2, 3 })
        {
            await fixture.Client.CatchUpAsync(ObjectDirectoryProjector.AgentName, shard);
        }

        await using var command = fixture.Topology.Database(0).CreateCommand(
            "select shard, actor_id, status from pr2_object_directory where actor_type = $1 order by shard");
        command.Parameters.Add(new NpgsqlParameter { Value = type });
        var rows = new List<(int, string, short)>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            rows.Add((reader.GetInt32(0), reader.GetString(1), reader.GetInt16(2)));
        }

        Assert.Equal(actors.Select(a => (a.Shard, a.ActorId, (short)(a.Shard == 3 ? 2 : 1))), rows);
    }

    private static async Task<(short Status, long Version, string? State, long LastCounter, long LastPosition)> ReadRecordRowAsync(NpgsqlDataSource database, string actorId)
    {
        await using var command = database.CreateCommand("select status, version, state::text, last_counter, last_position from pr2_record where actor_id = $1");
        command.Parameters.Add(new NpgsqlParameter { Value = actorId });
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync(), $"no record row for {actorId}");
        return (reader.GetInt16(0), reader.GetInt64(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetInt64(3), reader.GetInt64(4));
    }
}
