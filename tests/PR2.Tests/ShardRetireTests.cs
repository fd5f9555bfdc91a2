using PR2.Client;
using PR2.Grains.Writing;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// A shard whose replica is retired (the first step of its removal, sql/023) refuses every later write with the final
/// <see cref="ErrorCode.ShardRemoved"/> through the cluster, writes nothing of it, and keeps what it acknowledged before.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ShardRetireTests(PostgresFixture postgres)
{
    [Fact]
    public async Task Writes_to_a_retired_shard_are_refused_for_good_and_written_nowhere()
    {
        var topology = postgres.CreateTopology("retire", 0, 1);
        await using var cluster = await TestClusters.StartAsync(topology.Settings);
        var client = new Pr2Client(cluster.Client);
        var before = await client.SendAsync(1, "item/before", MessageKind.Insert, "{}");

        // Retired under the open writer: its next commit is fenced, and the writer opening after it finds the replica retired.
        await JournalWriter.RetireAsync(topology.Database(1));
        foreach (var actor in new[] { "item/first-after", "item/second-after" })
        {
            var message = new Message(Guid.NewGuid(), "test", new ActorRef(1, actor), MessageKind.Insert, "{}");
            var refused = await RefusedAsync(client, message);
            Assert.Equal(ErrorCode.ShardRemoved, refused.Code);
            Assert.False(refused.IsRetriable);
            Assert.Equal(0, await ReplicaContents.CountAsync(topology.Database(1), message.MessageId));
        }

        Assert.Equal(1, await ReplicaContents.CountAsync(topology.Database(1), before.MessageId));
        // Eventual reads go on (a strong read needs the shard's writer, which no longer opens: a later step of the removal).
        await Eventually.TrueAsync(async () => (await client.ReadRecordAsync(1, "item/before", ReadConsistency.Eventual)).Record.Version == 1,
            TimeSpan.FromSeconds(30), "the record read after the retire");
    }

    // The final refusal a client retrying within 15 s gets (a retriable answer at the deadline fails the test).
    private static async Task<Pr2Exception> RefusedAsync(Pr2Client client, Message message)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (true)
        {
            try
            {
                await client.SendAsync(message);
                throw new Xunit.Sdk.XunitException($"{message.Receiver} was acknowledged after the retire");
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
