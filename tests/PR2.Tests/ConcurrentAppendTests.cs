using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// Many actors over several shards writing at once: positions stay contiguous, versions go 1..n per actor
/// in acceptance order, acknowledgements match what PostgreSQL holds, and group commit really batches.
/// </summary>
[Collection(SharedClusterCollection.Name)]
public sealed class ConcurrentAppendTests(SharedClusterFixture fixture)
{
    private const int Actors = 100;
    private const int MessagesPerActor = 21;
    private static readonly int[] Shards = [1, 2, 3];

    [Fact]
    public async Task Concurrent_appends_from_100_actors_over_3_shards_keep_positions_contiguous_and_versions_in_order()
    {
        var actors = Enumerable.Range(0, Actors)
            .Select(i => new ActorRef(Shards[i % Shards.Length], SharedClusterFixture.NewActorId("item")))
            .ToList();

        // Each actor: its insert, then all its modifies fired at once; the actor grain queues them.
        var acks = (await Task.WhenAll(actors.Select(async actor =>
        {
            var insert = await fixture.Client.SendAsync(actor.Shard, actor.ActorId, MessageKind.Insert, """{"n": 0}""");
            var modifies = await Task.WhenAll(Enumerable.Range(1, MessagesPerActor - 1).Select(n =>
                fixture.Client.SendAsync(actor.Shard, actor.ActorId, MessageKind.Modify, $$"""{"n": {{n}}, "by": "{{n}}"}""")));
            return modifies.Prepend(insert).ToArray();
        }))).SelectMany(a => a).ToList();

        Assert.Equal(Actors * MessagesPerActor, acks.Count);
        Assert.True(acks.Count >= 2000);

        foreach (var shard in Shards)
        {
            var rows = await ReadJournalAsync(shard);

            // Contiguous and strictly increasing: exactly 1..n, whatever else the shard already held.
            Assert.Equal(Enumerable.Range(1, rows.Count).Select(i => (long)i), rows.Select(r => r.Position));
            // Lamport counters rise with position: position order is Lamport order on the shard that wrote them.
            Assert.True(rows.Zip(rows.Skip(1)).All(pair => pair.First.Counter < pair.Second.Counter), $"shard {shard}: stamps not increasing");

            // Every ack of this shard is in the journal at its acked position, stamp and version.
            var byId = rows.ToDictionary(r => r.MessageId);
            foreach (var ack in acks.Where(a => a.Actor.Shard == shard))
            {
                var row = byId[ack.MessageId];
                Assert.Equal((ack.Position, ack.Stamp.Counter, ack.Version, ack.Actor.ActorId), (row.Position, row.Counter, row.Version, row.ActorId));
            }

            // Per actor: versions 1..n in position (acceptance) order.
            foreach (var group in rows.Where(r => actors.Contains(new ActorRef(shard, r.ActorId))).GroupBy(r => r.ActorId))
            {
                Assert.Equal(Enumerable.Range(1, MessagesPerActor).Select(i => (long)i), group.OrderBy(r => r.Position).Select(r => r.Version));
            }

            // Group commit: far fewer transactions (distinct commit timestamps) than entries.
            var transactions = await fixture.Topology.ScalarAsync(shard, "select count(distinct recorded_at) from pr2_journal");
            Assert.True(transactions < rows.Count, $"shard {shard}: {transactions} transactions for {rows.Count} entries");
        }

        // The records agree with the last acknowledgement of each actor.
        foreach (var actor in actors.Take(10))
        {
            var record = await fixture.Client.GetRecordAsync(actor.Shard, actor.ActorId);
            Assert.Equal(MessagesPerActor, record.Version);
        }
    }

    private async Task<List<(long Position, Guid MessageId, long Counter, long Version, string ActorId)>> ReadJournalAsync(int shard)
    {
        var rows = new List<(long, Guid, long, long, string)>();
        await using var command = fixture.Topology.Database(shard).CreateCommand(
            "select position, message_id, lamport_counter, actor_version, actor_id from pr2_journal order by position");
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            rows.Add((reader.GetInt64(0), reader.GetGuid(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetString(4)));
        }

        return rows;
    }
}
