using System.Collections.Concurrent;
using Microsoft.Extensions.Logging.Abstractions;
using PR2.Grains.Json;
using PR2.Grains.Storage;
using PR2.Grains.Writing;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// One writer per shard, fenced in the database: a second writer for the same shard (forced here by
/// opening two) takes over, the first stops at its next commit, and their entries never interleave.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class WriterFencingTests(PostgresFixture postgres)
{
    private const int Shard = 1;

    [Fact]
    public async Task A_second_writer_fences_the_first_and_their_entries_never_interleave()
    {
        var topology = postgres.CreateTopology("fencing", 0, Shard);
        await MigrateAsync(topology);
        var database = topology.Database(Shard);

        await using var first = await JournalWriter.OpenAsync(Shard, database, 100, NullLogger.Instance);
        var firstAcks = new ConcurrentBag<WriteAck>();
        var secondAcks = new ConcurrentBag<WriteAck>();
        var firstErrors = new ConcurrentBag<Pr2Exception>();
        JournalWriter? second = null;

        // 16 concurrent appenders on the first writer until it is fenced (bounded by count).
        var appenders = Enumerable.Range(0, 16).Select(_ => Task.Run(async () =>
        {
            for (var i = 0; i < 500; i++)
            {
                try
                {
                    firstAcks.Add(await first.AppendAsync(NewRequest()));
                }
                catch (Pr2Exception e)
                {
                    firstErrors.Add(e);
                    return;
                }
            }
        })).ToList();

        await Eventually.TrueAsync(() => Task.FromResult(firstAcks.Count >= 200), TimeSpan.FromSeconds(30), "first writer acknowledged 200 entries");
        second = await JournalWriter.OpenAsync(Shard, database, 100, NullLogger.Instance);
        var secondAppenders = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            for (var i = 0; i < 50; i++)
            {
                secondAcks.Add(await second.AppendAsync(NewRequest()));
            }
        })).ToList();

        await Task.WhenAll(appenders.Concat(secondAppenders));
        await second.DisposeAsync();

        Assert.True(first.IsFenced);
        Assert.NotEmpty(firstErrors);
        Assert.All(firstErrors, e => Assert.Equal(ErrorCode.WriterFenced, e.Code));
        Assert.True(second.Epoch > first.Epoch);
        Assert.Equal(400, secondAcks.Count);

        // No interleaving: everything the first writer committed comes before anything of the second.
        Assert.True(firstAcks.Max(a => a.Position) < secondAcks.Min(a => a.Position));

        // The journal holds exactly the acknowledged entries, at positions 1..n without a gap.
        var positions = (await JournalStore.ReadAsync(database, Shard, 0, 100_000)).Select(e => (e.MessageId, e.Position)).ToList();
        Assert.Equal(Enumerable.Range(1, positions.Count).Select(i => (long)i), positions.Select(p => p.Position));
        Assert.Equal(
            firstAcks.Concat(secondAcks).Select(a => (a.MessageId, a.Position)).OrderBy(p => p.Position),
            positions);
    }

    [Fact]
    public async Task A_fenced_writer_refuses_new_appends_without_touching_the_journal()
    {
        var topology = postgres.CreateTopology("fenced", 0, Shard);
        await MigrateAsync(topology);
        var database = topology.Database(Shard);

        await using var first = await JournalWriter.OpenAsync(Shard, database, 100, NullLogger.Instance);
        await first.AppendAsync(NewRequest());
        await using var second = await JournalWriter.OpenAsync(Shard, database, 100, NullLogger.Instance);

        var refused = await Assert.ThrowsAsync<Pr2Exception>(() => first.AppendAsync(NewRequest()));
        var again = await Assert.ThrowsAsync<Pr2Exception>(() => first.AppendAsync(NewRequest()));
        Assert.Equal((ErrorCode.WriterFenced, ErrorCode.WriterFenced), (refused.Code, again.Code));
        Assert.True(refused.IsRetriable);

        var ack = await second.AppendAsync(NewRequest());
        Assert.Equal(2, ack.Position);
        Assert.Equal(2, await topology.JournalCountAsync(Shard));
    }

    private static Task MigrateAsync(TestTopology topology) => Migrations.MigrateAsync(topology.Settings);

    // A first message to a fresh actor: version 1, so appends from either writer never conflict on versions.
    private static AppendRequest NewRequest()
    {
        var actor = new ActorRef(Shard, $"item/{Guid.NewGuid():N}");
        var body = MessageBody.Parse(MessageKind.Insert, """{"q": 1}""", 1024);
        var message = new Message(Guid.NewGuid(), "test", actor, MessageKind.Insert, body.Canonical);
        return new AppendRequest(message, body.Canonical, MessageBody.ContentHash(actor, MessageKind.Insert, body.Canonical), 1);
    }
}
