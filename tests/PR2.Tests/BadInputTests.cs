using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>Every kind of bad input gets its own typed error naming the problem, and writes nothing.</summary>
[Collection(SharedClusterCollection.Name)]
public sealed class BadInputTests(SharedClusterFixture fixture)
{
    private const int Shard = 1;

    public static TheoryData<string, string, ErrorCode, string> ShapeErrors => new()
    {
        { "not JSON", "{\"a\": ", ErrorCode.BadBody, "not valid JSON" },
        { "array", "[1, 2]", ErrorCode.BadBody, "must be a JSON object, got array" },
        { "string", "\"text\"", ErrorCode.BadBody, "must be a JSON object, got string" },
        { "null", "null", ErrorCode.BadBody, "must be a JSON object, got null" },
        { "empty", "", ErrorCode.BadBody, "needs a body" },
        { "repeated member", "{\"a\": 1, \"b\": {\"c\": 1, \"c\": 2}}", ErrorCode.BadBody, "Duplicate property 'c'" },
        // The shared cluster runs with Pr2:Write:MaxBodyBytes = 4096.
        { "too large", "{\"blob\": \"" + new string('x', 5000) + "\"}", ErrorCode.BodyTooLarge, "limit is 4096 bytes" },
    };

    [Theory]
    [MemberData(nameof(ShapeErrors))]
    public async Task A_body_that_is_not_a_small_json_object_is_refused(string what, string body, ErrorCode code, string expected)
    {
        var actor = SharedClusterFixture.NewActorId();
        await AssertRefusedAsync(() => fixture.Client.SendAsync(Shard, actor, MessageKind.Insert, body), code, expected, what);
    }

    [Fact]
    public async Task An_unknown_shard_is_refused_with_the_known_shards()
    {
        var error = await AssertRefusedAsync(
            () => fixture.Client.SendAsync(42, SharedClusterFixture.NewActorId(), MessageKind.Insert, "{}"),
            ErrorCode.UnknownShard, "shard 42 is not configured", "unknown shard");
        Assert.Contains("0, 1, 2, 3", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("no-slash")]
    [InlineData("/key")]
    [InlineData("order/")]
    [InlineData("Order/1")]
    [InlineData("1order/1")]
    [InlineData("order/has space")]
    [InlineData("order/ünïcode")]
    [InlineData("order/'; drop table pr2_journal; --")]
    public async Task A_bad_actor_id_is_refused_by_the_client_and_by_the_silo(string actorId)
    {
        var client = Assert.Throws<Pr2Exception>(() => ActorRef.Create(Shard, actorId));
        Assert.Equal(ErrorCode.BadActorId, client.Code);

        // Bypass the client's check: the silo must refuse it too.
        var grain = fixture.Cluster.Client.GetGrain<IActorGrain>(Shard, actorId, null);
        await AssertRefusedAsync(
            () => grain.Send(new Message(Guid.NewGuid(), "test", new ActorRef(Shard, actorId), MessageKind.Insert, "{}")),
            ErrorCode.BadActorId, "actor", actorId);
    }

    [Fact]
    public void An_actor_id_longer_than_the_limit_is_refused()
    {
        var actorId = "order/" + new string('k', ActorRef.MaxKeyLength + 1);
        var error = Assert.Throws<Pr2Exception>(() => ActorRef.Create(Shard, actorId));
        Assert.Equal(ErrorCode.BadActorId, error.Code);
    }

    [Fact]
    public async Task A_message_addressed_to_another_actor_or_with_an_empty_id_is_refused()
    {
        var actor = SharedClusterFixture.NewActorId();
        var grain = fixture.Cluster.Client.GetGrain<IActorGrain>(Shard, actor, null);
        await AssertRefusedAsync(
            () => grain.Send(new Message(Guid.NewGuid(), "test", new ActorRef(Shard, SharedClusterFixture.NewActorId()), MessageKind.Insert, "{}")),
            ErrorCode.BadMessage, "addressed to", "wrong receiver");
        await AssertRefusedAsync(
            () => grain.Send(new Message(Guid.Empty, "test", new ActorRef(Shard, actor), MessageKind.Insert, "{}")),
            ErrorCode.BadMessage, "MessageId must not be empty", "empty id");
        await AssertRefusedAsync(
            () => grain.Send(new Message(Guid.NewGuid(), "test", new ActorRef(Shard, actor), (MessageKind)9, "{}")),
            ErrorCode.BadMessage, "not insert, modify or cancel", "unknown kind");
    }

    [Fact]
    public async Task A_kind_that_does_not_fit_the_record_state_is_refused()
    {
        var missing = SharedClusterFixture.NewActorId();
        await AssertRefusedAsync(() => fixture.Client.SendAsync(Shard, missing, MessageKind.Modify, "{}"), ErrorCode.RecordMissing, "does not exist", "modify missing");
        await AssertRefusedAsync(() => fixture.Client.SendAsync(Shard, missing, MessageKind.Cancel, "{}"), ErrorCode.RecordMissing, "does not exist", "cancel missing");

        var live = SharedClusterFixture.NewActorId();
        await fixture.Client.SendAsync(Shard, live, MessageKind.Insert, "{}");
        await AssertRefusedAsync(() => fixture.Client.SendAsync(Shard, live, MessageKind.Insert, "{}"), ErrorCode.RecordExists, "already exists", "insert live");

        var canceled = SharedClusterFixture.NewActorId();
        await fixture.Client.SendAsync(Shard, canceled, MessageKind.Insert, "{}");
        await fixture.Client.SendAsync(Shard, canceled, MessageKind.Cancel, "");
        foreach (var kind in new[] { MessageKind.Insert, MessageKind.Modify, MessageKind.Cancel })
        {
            await AssertRefusedAsync(() => fixture.Client.SendAsync(Shard, canceled, kind, "{}"), ErrorCode.RecordCanceled, "stays canceled", $"{kind} canceled");
        }

        Assert.Equal(RecordStatus.Canceled, (await fixture.Client.GetRecordAsync(Shard, canceled)).Status);
    }

    [Fact]
    public async Task A_modify_that_repeats_a_member_is_refused_and_the_record_stays_as_it_was()
    {
        // Accepted, such a patch would have no single meaning (which "n" wins?) and would reach every fold of the record.
        var actor = SharedClusterFixture.NewActorId();
        await fixture.Client.SendAsync(Shard, actor, MessageKind.Insert, """{"n": 1}""");
        await AssertRefusedAsync(() => fixture.Client.SendAsync(Shard, actor, MessageKind.Modify, """{"n": 2, "n": 3}"""),
            ErrorCode.BadBody, "Duplicate property 'n'", "modify repeating a member");

        var record = await fixture.Client.GetRecordAsync(Shard, actor);
        Assert.Equal((1L, """{"n":1}"""), (record.Version, record.State));
    }

    [Fact]
    public async Task An_expected_version_that_differs_is_refused()
    {
        var actor = SharedClusterFixture.NewActorId();
        await AssertRefusedAsync(() => fixture.Client.SendAsync(Shard, actor, MessageKind.Insert, "{}", expectedVersion: 1), ErrorCode.VersionMismatch, "expected version 1", "insert expecting 1");
        await fixture.Client.SendAsync(Shard, actor, MessageKind.Insert, "{}", expectedVersion: 0);
        await AssertRefusedAsync(() => fixture.Client.SendAsync(Shard, actor, MessageKind.Modify, "{}", expectedVersion: 0), ErrorCode.VersionMismatch, "is at version 1", "modify expecting 0");
        var ack = await fixture.Client.SendAsync(Shard, actor, MessageKind.Modify, "{}", expectedVersion: 1);
        Assert.Equal(2, ack.Version);
    }

    // Runs the call, checks the error, and checks that the shard's journal did not move.
    private async Task<Pr2Exception> AssertRefusedAsync(Func<Task> send, ErrorCode code, string expectedText, string what)
    {
        var shards = fixture.Topology.Shards.ToArray();
        var before = await Task.WhenAll(shards.Select(fixture.Topology.JournalCountAsync));
        var error = await Assert.ThrowsAsync<Pr2Exception>(send);
        Assert.True(code == error.Code, $"{what}: expected {code}, got {error.Code}: {error.Message}");
        Assert.Contains(expectedText, error.Message, StringComparison.Ordinal);
        Assert.Equal(before, await Task.WhenAll(shards.Select(fixture.Topology.JournalCountAsync)));
        return error;
    }
}
