using PR2.Client;
using PR2.Grains.Writing;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// A shard whose replica is retired (the first step of its seal, sql/023) takes no more writes: until the seal has made
/// the replicas equal and marked them, every write is refused retriably (whether an earlier attempt was written is not
/// known yet) and written nowhere; once sealed, a message written before gets its acknowledgement and any other the final
/// <see cref="ErrorCode.ShardRemoved"/>.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ShardRetireTests(PostgresFixture postgres)
{
    [Fact]
    public async Task Writes_to_a_retired_shard_are_written_nowhere_and_refused_for_good_once_it_is_sealed()
    {
        var topology = postgres.CreateTopology("retire", 0, 1);
        await using var cluster = await TestClusters.StartAsync(topology.Settings);
        var client = new Pr2Client(cluster.Client);
        var before = new Message(Guid.NewGuid(), "test", new ActorRef(1, "item/before"), MessageKind.Insert, "{}");
        var acknowledged = await client.SendAsync(before);

        // Retired under the open writer (a seal interrupted after its first step): its next commit is fenced, and the
        // writer opening after it finds the replica retired. Nothing is final until the seal completes.
        await JournalWriter.RetireAsync(topology.Database(1));
        var after = new Message(Guid.NewGuid(), "test", new ActorRef(1, "item/after"), MessageKind.Insert, "{}");
        foreach (var message in new[] { after, before })
        {
            var refused = await FinalOrLastAsync(client, message, TimeSpan.FromSeconds(3));
            Assert.True(refused is { Code: ErrorCode.ShardUnavailable, IsRetriable: true }, $"{message.Receiver} before the seal completed: {refused?.Code}: {refused?.Message}");
        }

        Assert.Equal(0, await ReplicaContents.CountAsync(topology.Database(1), after.MessageId));

        await cluster.Client.GetGrain<IDirectoryGrain>(0).RemoveShard(1);
        await cluster.Client.GetGrain<IShardWriterGrain>(1).Seal();
        var removed = await FinalOrLastAsync(client, after, TimeSpan.FromSeconds(15));
        Assert.True(removed is { Code: ErrorCode.ShardRemoved, IsRetriable: false }, $"a fresh write once sealed: {removed?.Code}: {removed?.Message}");
        Assert.Equal(0, await ReplicaContents.CountAsync(topology.Database(1), after.MessageId));
        var again = await client.SendAsync(before);
        Assert.Equal((acknowledged.Position, acknowledged.Version), (again.Position, again.Version));
        Assert.Equal(1, await ReplicaContents.CountAsync(topology.Database(1), before.MessageId));
        Assert.Equal(1, (await client.ReadRecordAsync(1, "item/before", ReadConsistency.Strong)).Record.Version);
    }

    // The first final answer (null: acknowledged, which fails the caller's check), or the last retriable one at the deadline.
    private static async Task<Pr2Exception?> FinalOrLastAsync(Pr2Client client, Message message, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        while (true)
        {
            try
            {
                await client.SendAsync(message);
                return null;
            }
            catch (Pr2Exception e) when (!e.IsRetriable || DateTime.UtcNow > deadline)
            {
                return e;
            }
            catch (Pr2Exception)
            {
                await Task.Delay(100);
            }
        }
    }
}
