using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Metadata;
using PR2.Grains;
using PR2.Grains.Configuration;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>The write path through the actor grain: versions, merge patch, idempotency, the Lamport rule.</summary>
[Collection(SharedClusterCollection.Name)]
public sealed class ActorWriteTests(SharedClusterFixture fixture)
{
    private readonly TestTopology _db = fixture.Topology;

    [Fact]
    public void Actors_are_collected_after_the_configured_idle_time_and_other_grains_keep_the_default()
    {
        var services = fixture.Cluster.Silos[0].SiloHost.Services;
        var types = services.GetRequiredService<GrainTypeResolver>();
        var contexts = services.GetRequiredService<GrainTypeSharedContextResolver>();
        TimeSpan IdleTime(Type grainClass) => contexts.GetComponents(types.GetGrainType(grainClass)).CollectionAgeLimit;

        Assert.Equal(TimeSpan.FromMinutes(new WriteOptions().ActorIdleMinutes), IdleTime(typeof(ActorGrain)));
        Assert.Equal(services.GetRequiredService<IOptions<GrainCollectionOptions>>().Value.CollectionAge, IdleTime(typeof(ShardWriterGrain)));
        Assert.NotEqual(IdleTime(typeof(ActorGrain)), IdleTime(typeof(ShardWriterGrain)));
    }

    [Fact]
    public async Task Insert_modify_cancel_get_versions_1_2_3_in_contiguous_positions()
    {
        var actor = SharedClusterFixture.NewActorId();
        var insert = await fixture.Client.SendAsync(1, actor, MessageKind.Insert, """{"total": 10}""");
        var modify = await fixture.Client.SendAsync(1, actor, MessageKind.Modify, """{"total": 12}""");
        var cancel = await fixture.Client.SendAsync(1, actor, MessageKind.Cancel, """{"reason": "customer"}""");

        Assert.Equal([1L, 2L, 3L], [insert.Version, modify.Version, cancel.Version]);
        Assert.Equal(insert.Position + 1, modify.Position);
        Assert.Equal(modify.Position + 1, cancel.Position);
        Assert.True(insert.Stamp < modify.Stamp && modify.Stamp < cancel.Stamp);
        Assert.All([insert, modify, cancel], ack => Assert.Equal(1, ack.Stamp.Shard));

        var record = await fixture.Client.GetRecordAsync(1, actor);
        Assert.Equal(RecordStatus.Canceled, record.Status);
        Assert.Equal(3, record.Version);
        Assert.Equal(3, await _db.ScalarAsync(1, "select count(*) from pr2_journal where actor_id = $1", actor));
    }

    [Fact]
    public async Task Modify_applies_a_json_merge_patch()
    {
        var actor = SharedClusterFixture.NewActorId();
        await fixture.Client.SendAsync(2, actor, MessageKind.Insert, """{"name": "Ann", "address": {"city": "Tampa", "zip": "33601"}, "tags": [1, 2]}""");
        await fixture.Client.SendAsync(2, actor, MessageKind.Modify, """{"address": {"zip": null, "street": "Main"}, "tags": [3], "vip": true}""");

        var state = JsonNode.Parse((await fixture.Client.GetRecordAsync(2, actor)).State!)!;
        Assert.True(JsonNode.DeepEquals(
            JsonNode.Parse("""{"name": "Ann", "address": {"city": "Tampa", "street": "Main"}, "tags": [3], "vip": true}"""),
            state));
    }

    [Fact]
    public async Task A_record_survives_deactivation_because_it_is_folded_from_the_journal()
    {
        var actor = SharedClusterFixture.NewActorId();
        await fixture.Client.SendAsync(1, actor, MessageKind.Insert, """{"n": 1}""");
        await fixture.Client.SendAsync(1, actor, MessageKind.Modify, """{"n": 2}""");
        var before = await fixture.Client.GetRecordAsync(1, actor);

        // Force every activation to go away; the next call loads the actor from PostgreSQL.
        var management = fixture.Cluster.Client.GetGrain<IManagementGrain>(0);
        await management.ForceActivationCollection(TimeSpan.Zero);

        var after = await fixture.Client.GetRecordAsync(1, actor);
        Assert.Equal(before, after);
        var third = await fixture.Client.SendAsync(1, actor, MessageKind.Modify, """{"n": 3}""");
        Assert.Equal(3, third.Version);
    }

    [Fact]
    public async Task An_insert_to_an_existing_actor_from_a_fresh_activation_is_refused_and_writes_nothing()
    {
        // A fresh activation sends a first insert without reading the journal; the writer's version check must catch it.
        var live = SharedClusterFixture.NewActorId();
        var canceled = SharedClusterFixture.NewActorId();
        var insertId = Guid.NewGuid();
        var insert = await fixture.Client.SendAsync(1, live, MessageKind.Insert, """{"a": 1}""", insertId);
        await fixture.Client.SendAsync(1, canceled, MessageKind.Insert, """{"b": 1}""");
        await fixture.Client.SendAsync(1, canceled, MessageKind.Cancel, null);
        var management = fixture.Cluster.Client.GetGrain<IManagementGrain>(0);

        await management.ForceActivationCollection(TimeSpan.Zero);
        var exists = await Assert.ThrowsAsync<Pr2Exception>(() => fixture.Client.SendAsync(1, live, MessageKind.Insert, """{"a": 2}"""));
        await management.ForceActivationCollection(TimeSpan.Zero);
        var ended = await Assert.ThrowsAsync<Pr2Exception>(() => fixture.Client.SendAsync(1, canceled, MessageKind.Insert, """{"b": 2}"""));
        await management.ForceActivationCollection(TimeSpan.Zero);
        var retried = await fixture.Client.SendAsync(1, live, MessageKind.Insert, """{"a": 1}""", insertId);

        Assert.Equal((ErrorCode.RecordExists, ErrorCode.RecordCanceled), (exists.Code, ended.Code));
        Assert.Equal(insert with { Duplicate = true }, retried);
        Assert.Equal(1, await _db.ScalarAsync(1, "select count(*) from pr2_journal where actor_id = $1", live));
        Assert.Equal(2, await _db.ScalarAsync(1, "select count(*) from pr2_journal where actor_id = $1", canceled));
        Assert.Equal(2, (await fixture.Client.SendAsync(1, live, MessageKind.Modify, """{"a": 3}""")).Version);
    }

    [Fact]
    public async Task The_same_message_id_again_returns_the_first_ack_and_writes_nothing()
    {
        var actor = SharedClusterFixture.NewActorId();
        var insertId = Guid.NewGuid();
        var modifyId = Guid.NewGuid();
        var insert = await fixture.Client.SendAsync(3, actor, MessageKind.Insert, """{"a": 1}""", insertId);
        var modify = await fixture.Client.SendAsync(3, actor, MessageKind.Modify, """{"a": 2}""", modifyId);

        // Same content; whitespace and member spacing do not make a different message.
        var insertAgain = await fixture.Client.SendAsync(3, actor, MessageKind.Insert, """{ "a" : 1 }""", insertId);
        var modifyAgain = await fixture.Client.SendAsync(3, actor, MessageKind.Modify, """{"a": 2}""", modifyId);

        Assert.Equal(insert with { Duplicate = true }, insertAgain);
        Assert.Equal(modify with { Duplicate = true }, modifyAgain);
        Assert.Equal(2, await _db.ScalarAsync(3, "select count(*) from pr2_journal where actor_id = $1", actor));
        Assert.Equal(2, (await fixture.Client.GetRecordAsync(3, actor)).Version);
    }

    [Fact]
    public async Task The_same_message_id_with_different_content_is_refused_and_writes_nothing()
    {
        var actor = SharedClusterFixture.NewActorId();
        var other = SharedClusterFixture.NewActorId();
        var id = Guid.NewGuid();
        await fixture.Client.SendAsync(1, actor, MessageKind.Insert, """{"a": 1}""", id);
        var head = await HeadAsync(1);

        // Different body to the same actor: the state check passes for modify, the journal knows the id.
        var differentBody = await Assert.ThrowsAsync<Pr2Exception>(() => fixture.Client.SendAsync(1, actor, MessageKind.Modify, """{"a": 2}""", id));
        // Same body to another actor.
        var differentActor = await Assert.ThrowsAsync<Pr2Exception>(() => fixture.Client.SendAsync(1, other, MessageKind.Insert, """{"a": 1}""", id));
        // Refused by state (insert on a live record) and then recognized as a reused id.
        var differentInsert = await Assert.ThrowsAsync<Pr2Exception>(() => fixture.Client.SendAsync(1, actor, MessageKind.Insert, """{"a": 9}""", id));

        Assert.All([differentBody, differentActor, differentInsert], e => Assert.Equal(ErrorCode.IdempotencyConflict, e.Code));
        Assert.Contains(id.ToString(), differentBody.Message, StringComparison.Ordinal);
        Assert.Equal(head, await HeadAsync(1));
        Assert.Equal(RecordStatus.Missing, (await fixture.Client.GetRecordAsync(1, other)).Status);
    }

    [Fact]
    public async Task The_shard_clock_moves_past_an_incoming_stamp_and_never_goes_back()
    {
        var actor = SharedClusterFixture.NewActorId();
        var first = await fixture.Client.SendAsync(2, actor, MessageKind.Insert, "{}");
        var incoming = new LamportStamp(first.Stamp.Counter + 3_600_000_000, 3);

        var caused = await fixture.Client.SendAsync(new Message(Guid.NewGuid(), "rule", new ActorRef(2, actor), MessageKind.Modify, """{"x": 1}""", CausedBy: incoming));
        var after = await fixture.Client.SendAsync(2, actor, MessageKind.Modify, """{"x": 2}""");
        var stale = new LamportStamp(1, 1);
        var behind = await fixture.Client.SendAsync(new Message(Guid.NewGuid(), "rule", new ActorRef(2, actor), MessageKind.Modify, """{"x": 3}""", CausedBy: stale));

        Assert.Equal(new LamportStamp(incoming.Counter + 1, 2), caused.Stamp);
        Assert.Equal(caused.Stamp.Counter + 1, after.Stamp.Counter);
        Assert.Equal(after.Stamp.Counter + 1, behind.Stamp.Counter);
        Assert.Equal(incoming.Counter, await _db.ScalarAsync(2, "select caused_by_counter from pr2_journal where message_id = $1", caused.MessageId));
        Assert.True(await _db.ScalarAsync(2, "select clock from pr2_writer_head") >= behind.Stamp.Counter);
    }

    [Fact]
    public async Task An_error_crosses_the_orleans_boundary_with_its_code_and_message()
    {
        var actor = SharedClusterFixture.NewActorId();
        var error = await Assert.ThrowsAsync<Pr2Exception>(() => fixture.Client.SendAsync(1, actor, MessageKind.Modify, """{"a": 1}"""));
        Assert.Equal(ErrorCode.RecordMissing, error.Code);
        Assert.Contains(actor, error.Message, StringComparison.Ordinal);
        Assert.False(error.IsRetriable);
    }

    private Task<long> HeadAsync(int shard) => _db.ScalarAsync(shard, "select position from pr2_writer_head");
}
