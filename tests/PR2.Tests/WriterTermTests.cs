using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using PR2.Grains.Configuration;
using PR2.Grains.Json;
using PR2.Grains.Replication;
using PR2.Grains.Storage;
using PR2.Grains.Writing;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// One acknowledged writer per Quorum shard, a new writer that starts from every acknowledged entry, and a new Primary
/// writer that stamps above what it could not gather: writers and
/// replication gates are driven directly on three real replica databases, in the states an asymmetric partition and a
/// duplicate writer activation leave behind (a writer that can still reach its primary but whose other replicas a newer
/// writer has fenced; a replica that holds the most entries but not the acknowledged ones).
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class WriterTermTests(PostgresFixture postgres)
{
    private const int Shard = 1;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task A_writer_whose_other_replicas_a_newer_term_fenced_gets_no_more_acknowledgements()
    {
        var set = await ReplicasAsync("term_gate");
        Assert.Equal([0, 1, 2], await WriterTakeover.FenceAsync(set, [0, 1, 2], 1, Timeout));
        await using var first = await OpenAsync(set, 0, others: [1, 2], term: 1);
        var acked = await first.AppendAsync(Insert());

        // A second writer cannot reach replica 0: it takes term 2 on replicas 1 and 2 (a majority) and gathers them.
        Assert.Equal([1, 2], await WriterTakeover.FenceAsync(set, [1, 2], 2, Timeout));
        Assert.Equal([1, 2], await WriterTakeover.GatherAsync(set, 1, [1, 2], Timeout));
        await using var second = await OpenAsync(set, 1, others: [0, 2], term: 2);

        // The first still commits on replica 0, where nothing fenced it, but no copy elsewhere counts any more.
        var refused = await Assert.ThrowsAsync<Pr2Exception>(() => first.AppendAsync(Insert()));
        Assert.Equal(ErrorCode.ShardUnavailable, refused.Code);

        // The second acknowledges, after the first's acknowledged entry, which it holds.
        var ack = await second.AppendAsync(Insert());
        Assert.Equal(1, await ReplicaContents.CountAsync(set.Replicas[1], acked.MessageId));
        Assert.True(ack.Stamp > acked.Stamp, $"{ack.Stamp} is not after {acked.Stamp}");
    }

    [Fact]
    public async Task A_new_primary_takes_every_acknowledged_entry_before_its_first_commit_and_stamps_above_them()
    {
        var set = await ReplicasAsync("term_gather");
        Assert.Equal([0, 1, 2], await WriterTakeover.FenceAsync(set, [0, 1, 2], 1, Timeout));

        // Three versions of one actor, acknowledged on replicas 0 and 1 (replica 2 was not answering then).
        var actor = new ActorRef(Shard, "acct/x");
        var acks = new List<WriteAck>();
        await using (var writer = await OpenAsync(set, 0, others: [1], term: 1))
        {
            acks.Add(await writer.AppendAsync(Insert(actor)));
            acks.Add(await writer.AppendAsync(Modify(actor, 2)));
            acks.Add(await writer.AppendAsync(Modify(actor, 3)));
        }

        // Replica 2 holds more entries than either (20 of its own, never acknowledged), but none of those three.
        await using (var writer = await OpenAsync(set, 2, others: [], term: 1))
        {
            for (var i = 0; i < 20; i++)
            {
                await writer.AppendAsync(Insert());
            }
        }

        // Replica 0 is lost. A new writer picks the replica holding the most (2), fences 1 and 2 and gathers into 2.
        var vectors = await Task.WhenAll(new[] { 1, 2 }.Select(i => VersionVector.ReadAsync(set.Replicas[i])));
        Assert.True(vectors[1].Positions.Values.Sum() > vectors[0].Positions.Values.Sum(), "replica 2 must look the most complete");
        Assert.Equal([1, 2], await WriterTakeover.FenceAsync(set, [1, 2], 2, Timeout));
        Assert.Equal(WriterTakeover.MustReach(set), (await WriterTakeover.GatherAsync(set, 2, [1, 2], Timeout)).Count);

        // Its first write to the actor is version 4, stamped after the three acknowledged ones.
        await using var next = await OpenAsync(set, 2, others: [1], term: 2);
        var fourth = await next.AppendAsync(Modify(actor, 4));
        Assert.Equal(4, fourth.Version);
        Assert.True(fourth.Stamp > acks[^1].Stamp, $"{fourth.Stamp} is not after {acks[^1].Stamp}");
        foreach (var ack in acks)
        {
            Assert.Equal(1, await ReplicaContents.CountAsync(set.Replicas[2], ack.MessageId));
        }
    }

    [Fact]
    public async Task A_primary_writer_on_a_lagging_replica_stamps_above_what_the_lost_primary_acknowledged()
    {
        // Primary policy: one copy. Replica 1 holds the actor's insert; five modifies are then acknowledged on replica 0 only.
        var set = await ReplicasAsync("term_lagging", count: 2, requiredCopies: 1);
        Assert.Equal([0, 1], await WriterTakeover.FenceAsync(set, [0, 1], 1, Timeout));
        var actor = new ActorRef(Shard, "acct/y");
        var acks = new List<WriteAck>();
        await using (var old = await OpenAsync(set, 0, others: [], term: 1))
        {
            acks.Add(await old.AppendAsync(Insert(actor)));
            await ReplicaSync.PushAllAsync(set.Replicas[0], set.Replicas[1]);
            for (var version = 2; version <= 6; version++)
            {
                acks.Add(await old.AppendAsync(Modify(actor, version)));
            }
        }

        // Replica 0 is unreachable: a new writer fences and gathers replica 1 alone and acknowledges versions 2..4 again
        // (what Primary allows, docs/architecture.md), each a later message than any of the first six.
        Assert.Equal([1], await WriterTakeover.FenceAsync(set, [1], 2, Timeout));
        await using (var next = await OpenAsync(set, 1, others: [], term: 2))
        {
            for (var version = 2; version <= 4; version++)
            {
                acks.Add(await next.AppendAsync(Modify(actor, version)));
            }
        }

        // Replica 0 returns and anti-entropy merges both ways: every replica folds the nine in acknowledgement order.
        await ReplicaSync.PushAllAsync(set.Replicas[0], set.Replicas[1]);
        await ReplicaSync.PushAllAsync(set.Replicas[1], set.Replicas[0]);
        foreach (var replica in set.Replicas)
        {
            var folded = await JournalStore.ReadActorAsync(replica, actor);
            Assert.Equal(acks.Select(a => a.MessageId), folded.Select(e => e.MessageId));
        }
    }

    // Replica databases of shard 1 (three by default), a set over them needing requiredCopies (Quorum by default).
    [Fact]
    public async Task A_retired_replica_fences_its_writer_and_no_writer_opens_or_fences_there_again()
    {
        var set = await ReplicasAsync("term_retire", count: 1, requiredCopies: 1);
        Assert.Equal([0], await WriterTakeover.FenceAsync(set, [0], 1, Timeout));
        await using var writer = await OpenAsync(set, 0, others: [], term: 1);
        var acked = await writer.AppendAsync(Insert());

        // Retired (twice: it is idempotent), the writer open there commits nothing more.
        await JournalWriter.RetireAsync(set.Replicas[0]);
        await JournalWriter.RetireAsync(set.Replicas[0]);
        var late = Insert();
        var fenced = await Assert.ThrowsAsync<Pr2Exception>(() => writer.AppendAsync(late));
        Assert.Equal(ErrorCode.WriterFenced, fenced.Code);

        // No new writer: not with a fence of its own, not at the epoch it finds, not as an unfenced writer.
        Assert.Empty(await WriterTakeover.FenceAsync(set, [0], 100, Timeout));
        var epoch = await Sql.ScalarAsync(set.Replicas[0], "select epoch from pr2_writer_head");
        Assert.Equal(2, epoch);
        foreach (var term in new long?[] { epoch, null })
        {
            var refused = await Assert.ThrowsAsync<Pr2Exception>(() => JournalWriter.OpenAsync(Shard, set.Replicas[0], 100, NullLogger.Instance, term: term));
            Assert.Equal(ErrorCode.ShardRemoved, refused.Code);
            Assert.False(refused.IsRetriable);
        }

        Assert.Equal(1, await ReplicaContents.CountAsync(set.Replicas[0], acked.MessageId));
        Assert.Equal(0, await ReplicaContents.CountAsync(set.Replicas[0], late.Message.MessageId));
        Assert.Equal(1L, await Sql.ScalarAsync(set.Replicas[0], "select count(*) from pr2_journal"));
    }

    private async Task<ShardReplicaSet> ReplicasAsync(string prefix, int count = 3, int requiredCopies = 2)
    {
        var databases = new List<NpgsqlDataSource>();
        for (var i = 0; i < count; i++)
        {
            var topology = postgres.CreateTopology($"{prefix}_{i}", 0, Shard);
            await Migrations.MigrateAsync(topology.Settings);
            databases.Add(topology.Database(Shard));
        }

        return new ShardReplicaSet(Shard, databases, requiredCopies == 1 ? AckPolicy.Primary : AckPolicy.Quorum);
    }

    private static Task<JournalWriter> OpenAsync(ShardReplicaSet set, int primary, int[] others, long term)
    {
        var gate = new ReplicationGate(Shard, set.Replicas[primary], [.. others.Select(i => set.Replicas[i])], set.RequiredCopies, Timeout, term);
        return JournalWriter.OpenAsync(Shard, set.Replicas[primary], 100, NullLogger.Instance, beforeAck: others.Length > 0 ? gate.EnsureAsync : null, term: term);
    }

    private static AppendRequest Insert(ActorRef? actor = null) => Request(actor ?? new ActorRef(Shard, $"item/{Guid.NewGuid():N}"), MessageKind.Insert, 1);

    private static AppendRequest Modify(ActorRef actor, long version) => Request(actor, MessageKind.Modify, version);

    private static AppendRequest Request(ActorRef actor, MessageKind kind, long version)
    {
        var body = MessageBody.Parse(kind, $$"""{"v": {{version}}}""", 1024);
        var message = new Message(Guid.NewGuid(), "test", actor, kind, body.Canonical);
        return new AppendRequest(message, body.Canonical, MessageBody.ContentHash(actor, kind, body.Canonical), version);
    }
}
