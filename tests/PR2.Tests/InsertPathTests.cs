using Microsoft.Extensions.DependencyInjection;
using Orleans.Metadata;
using PR2.Grains;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// First inserts go through the shard's insert path (<see cref="IInsertGrain"/>) without activating their actor; the
/// writer's version check keeps them from racing the actor, and an actor never trusts a missing record it holds.
/// </summary>
[Collection(SharedClusterCollection.Name)]
public sealed class InsertPathTests(SharedClusterFixture fixture)
{
    private const int Shard = 2;

    [Fact]
    public async Task First_inserts_commit_without_activating_their_actors_and_the_actor_folds_them_when_first_used()
    {
        var actors = Enumerable.Range(0, 40).Select(_ => SharedClusterFixture.NewActorId()).ToArray();
        var acks = await Task.WhenAll(actors.Select(actor => fixture.Client.SendAsync(Shard, actor, MessageKind.Insert, """{"n": 1}""")));

        Assert.All(acks, ack => Assert.Equal((1L, false), (ack.Version, ack.Duplicate)));
        Assert.Equal(actors.Length, acks.Select(ack => ack.Position).Distinct().Count());
        var active = await ActiveActorsAsync();
        Assert.DoesNotContain(actors, active.Contains);

        // The actor activates on its first modify, reads its insert from the journal and continues at version 2.
        var modify = await fixture.Client.SendAsync(Shard, actors[0], MessageKind.Modify, """{"m": 2}""");
        Assert.Equal(2, modify.Version);
        Assert.Contains(actors[0], await ActiveActorsAsync());
        var record = await fixture.Client.GetRecordAsync(Shard, actors[0]);
        Assert.Equal((RecordStatus.Live, 2L, """{"n":1,"m":2}"""), (record.Status, record.Version, record.State));
    }

    [Fact]
    public async Task An_actor_that_found_no_record_reads_again_after_an_insert_that_came_the_insert_path()
    {
        var actor = SharedClusterFixture.NewActorId();
        var refused = await Assert.ThrowsAsync<Pr2Exception>(() => fixture.Client.SendAsync(Shard, actor, MessageKind.Modify, """{"n": 0}"""));
        Assert.Equal(ErrorCode.RecordMissing, refused.Code);
        Assert.Equal(RecordStatus.Missing, (await fixture.Client.GetRecordAsync(Shard, actor)).Status);
        Assert.Contains(actor, await ActiveActorsAsync());

        // The activation holds "missing"; the insert does not pass through it.
        var insert = await fixture.Client.SendAsync(Shard, actor, MessageKind.Insert, """{"n": 1}""");
        Assert.Equal(1, insert.Version);

        var record = await fixture.Client.GetRecordAsync(Shard, actor);
        Assert.Equal((RecordStatus.Live, 1L), (record.Status, record.Version));
        var modify = await fixture.Client.SendAsync(Shard, actor, MessageKind.Modify, """{"n": 2}""");
        Assert.Equal((2L, insert.Position + 1), (modify.Version, modify.Position));
    }

    [Fact]
    public async Task An_insert_to_an_actor_with_entries_is_refused_by_the_actor_and_a_retry_gets_its_first_ack()
    {
        var actor = SharedClusterFixture.NewActorId();
        var first = await fixture.Client.SendAsync(Shard, actor, MessageKind.Insert, """{"n": 1}""");
        var before = await fixture.Topology.JournalCountAsync(Shard);

        var again = await Assert.ThrowsAsync<Pr2Exception>(() => fixture.Client.SendAsync(Shard, actor, MessageKind.Insert, """{"n": 1}"""));
        Assert.Equal(ErrorCode.RecordExists, again.Code);
        var retry = await fixture.Client.SendAsync(Shard, actor, MessageKind.Insert, """{"n": 1}""", first.MessageId);
        Assert.Equal(first with { Duplicate = true }, retry);
        var conflict = await Assert.ThrowsAsync<Pr2Exception>(() =>
            fixture.Client.SendAsync(Shard, actor, MessageKind.Insert, """{"n": 2}""", first.MessageId));
        Assert.Equal(ErrorCode.IdempotencyConflict, conflict.Code);

        await fixture.Client.SendAsync(Shard, actor, MessageKind.Cancel, "");
        var canceled = await Assert.ThrowsAsync<Pr2Exception>(() => fixture.Client.SendAsync(Shard, actor, MessageKind.Insert, """{"n": 3}"""));
        Assert.Equal(ErrorCode.RecordCanceled, canceled.Code);
        Assert.Equal(before + 1, await fixture.Topology.JournalCountAsync(Shard));
    }

    [Fact]
    public async Task Racing_inserts_of_one_actor_by_both_ways_in_accept_exactly_one()
    {
        for (var round = 0; round < 5; round++)
        {
            var actor = SharedClusterFixture.NewActorId();
            var receiver = new ActorRef(Shard, actor);
            var viaInsertPath = Enumerable.Range(0, 10).Select(i =>
                fixture.Cluster.Client.GetGrain<IInsertGrain>(Shard).Insert(NewInsert(receiver, i)));
            var viaActor = Enumerable.Range(10, 10).Select(i =>
                fixture.Cluster.Client.GetGrain<IActorGrain>(Shard, actor, null).Send(NewInsert(receiver, i)));
            var outcomes = await Task.WhenAll(viaInsertPath.Concat(viaActor).Select(OutcomeAsync));

            var accepted = Assert.Single(outcomes, outcome => outcome.Ack is not null).Ack!;
            Assert.Equal(1, accepted.Version);
            Assert.All(outcomes.Where(outcome => outcome.Ack is null), outcome => Assert.Equal(ErrorCode.RecordExists, outcome.Refusal));
            Assert.Equal(1, await fixture.Topology.ScalarAsync(Shard, "select count(*) from pr2_journal where actor_id = $1", actor));
            var record = await fixture.Client.GetRecordAsync(Shard, actor);
            Assert.Equal((RecordStatus.Live, 1L), (record.Status, record.Version));
        }
    }

    [Fact]
    public async Task The_insert_path_refuses_what_the_actor_refuses_and_passes_on_what_is_not_a_first_insert()
    {
        var grain = fixture.Cluster.Client.GetGrain<IInsertGrain>(Shard);
        var badId = await Assert.ThrowsAsync<Pr2Exception>(() => grain.Insert(NewInsert(new ActorRef(Shard, "Order/1"), 0)));
        Assert.Equal(ErrorCode.BadActorId, badId.Code);
        var unknownShard = await Assert.ThrowsAsync<Pr2Exception>(() =>
            fixture.Cluster.Client.GetGrain<IInsertGrain>(42).Insert(NewInsert(new ActorRef(42, SharedClusterFixture.NewActorId()), 0)));
        Assert.Equal(ErrorCode.UnknownShard, unknownShard.Code);
        var receiver = new ActorRef(Shard, SharedClusterFixture.NewActorId());
        var emptyId = await Assert.ThrowsAsync<Pr2Exception>(() => grain.Insert(NewInsert(receiver, 0) with { MessageId = Guid.Empty }));
        Assert.Equal(ErrorCode.BadMessage, emptyId.Code);
        var noReceiver = await Assert.ThrowsAsync<Pr2Exception>(() => grain.Insert(NewInsert(receiver, 0) with { Receiver = null! }));
        Assert.Equal(ErrorCode.BadMessage, noReceiver.Code);
        var badBody = await Assert.ThrowsAsync<Pr2Exception>(() => grain.Insert(NewInsert(receiver, 0) with { Body = "[1]" }));
        Assert.Equal(ErrorCode.BadBody, badBody.Code);
        Assert.Equal(0, await fixture.Topology.ScalarAsync(Shard, "select count(*) from pr2_journal where actor_id = $1", receiver.ActorId));

        // Not a first insert: the actor decides (a modify of a missing record, an insert expecting version 1).
        var modify = await Assert.ThrowsAsync<Pr2Exception>(() => grain.Insert(NewInsert(receiver, 0) with { Kind = MessageKind.Modify }));
        Assert.Equal(ErrorCode.RecordMissing, modify.Code);
        var expecting = await Assert.ThrowsAsync<Pr2Exception>(() => grain.Insert(NewInsert(receiver, 0) with { ExpectedVersion = 1 }));
        Assert.Equal(ErrorCode.VersionMismatch, expecting.Code);

        // Sent to another shard's insert path, a message still lands in its own shard.
        var elsewhere = await fixture.Cluster.Client.GetGrain<IInsertGrain>(Shard + 1).Insert(NewInsert(receiver, 1));
        Assert.Equal((Shard, 1L), (elsewhere.Actor.Shard, elsewhere.Version));
    }

    private static Message NewInsert(ActorRef receiver, int n) =>
        new(MessageIds.New(), "test", receiver, MessageKind.Insert, $$"""{"n": {{n}}}""");

    private static async Task<(WriteAck? Ack, ErrorCode? Refusal)> OutcomeAsync(Task<WriteAck> send)
    {
        try
        {
            return (await send, null);
        }
        catch (Pr2Exception e)
        {
            return (null, e.Code);
        }
    }

    // The actor ids of shard Shard's actor grains active in the silo now.
    private async Task<HashSet<string>> ActiveActorsAsync()
    {
        var services = fixture.Cluster.Silos[0].SiloHost.Services;
        var actorType = services.GetRequiredService<GrainTypeResolver>().GetGrainType(typeof(ActorGrain));
        var grains = await fixture.Cluster.Client.GetGrain<IManagementGrain>(0).GetActiveGrains(actorType);
        var active = new HashSet<string>(StringComparer.Ordinal);
        foreach (var grain in grains)
        {
            if (grain.GetIntegerKey(out var actorId) == Shard && actorId is not null)
            {
                active.Add(actorId);
            }
        }

        return active;
    }
}
