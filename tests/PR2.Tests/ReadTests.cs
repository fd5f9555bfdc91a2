using System.Text.Json.Nodes;
using PR2.Client;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// Snapshot reads: a strong read sees every acknowledged write at once; a record read as of a stamp is the
/// record right after that write; a query pages through a type by a JSON containment filter with a cursor that
/// stays stable while writes go on.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ReadTests(PostgresFixture postgres)
{
    [Fact]
    public async Task A_strong_read_sees_each_write_as_soon_as_it_is_acknowledged()
    {
        var topology = postgres.CreateTopology("reads_strong", 0, 1);
        await using var cluster = await TestClusters.StartAsync(topology.Settings);
        var client = new Pr2Client(cluster.Client);
        await client.SendAsync(1, "counter/a", MessageKind.Insert, """{"n": 0}""");
        for (var n = 1; n <= 20; n++)
        {
            var ack = await client.SendAsync(1, "counter/a", MessageKind.Modify, $$"""{"n": {{n}}}""");
            var read = await client.ReadRecordAsync(1, "counter/a", ReadConsistency.Strong);
            Assert.Equal(ack.Version, read.Record.Version);
            Assert.Equal(n, JsonNode.Parse(read.Record.State!)!["n"]!.GetValue<int>());
            Assert.True(read.Mark >= ack.Position, $"read reflects position {read.Mark}, the write was at {ack.Position}");
        }

        // An eventual read catches up with the records view (and says how far that view was).
        await Eventually.TrueAsync(async () => (await client.ReadRecordAsync(1, "counter/a", ReadConsistency.Eventual)).Record.Version == 21,
            TimeSpan.FromSeconds(30), "the records view reached version 21");
    }

    [Fact]
    public async Task A_record_read_as_of_a_stamp_is_the_record_right_after_that_write()
    {
        var topology = postgres.CreateTopology("reads_as_of", 0, 1);
        await using var cluster = await TestClusters.StartAsync(topology.Settings);
        var client = new Pr2Client(cluster.Client);
        var history = new List<(LamportStamp Stamp, ActorRecord Record)>();
        var insert = await client.SendAsync(1, "order/9", MessageKind.Insert, """{"total": 1, "lines": []}""");
        history.Add((insert.Stamp, await client.GetRecordAsync(1, "order/9")));
        for (var i = 2; i <= 6; i++)
        {
            // Other actors write in between, so stamps of order/9 are not consecutive.
            await client.SendAsync(1, $"other/{i}", MessageKind.Insert, "{}");
            var ack = await client.SendAsync(1, "order/9", i == 6 ? MessageKind.Cancel : MessageKind.Modify, i == 6 ? "" : $$"""{"total": {{i}}, "note{{i}}": true}""");
            history.Add((ack.Stamp, await client.GetRecordAsync(1, "order/9")));
        }

        foreach (var (stamp, record) in history)
        {
            var asOf = (await client.ReadRecordAsOfAsync(1, "order/9", stamp)).Record;
            Assert.Equal((record.Status, record.Version), (asOf.Status, asOf.Version));
            // The same JSON (member order may differ: the journal keeps bodies as jsonb).
            Assert.True(SameJson.As(record.State, asOf.State), $"{record.State} / {asOf.State}");
        }

        var before = (await client.ReadRecordAsOfAsync(1, "order/9", new LamportStamp(history[0].Stamp.Counter - 1, 1))).Record;
        Assert.Equal(RecordStatus.Missing, before.Status);
    }

    [Fact]
    public async Task A_query_pages_by_containment_with_a_cursor_that_stays_stable_while_writes_go_on()
    {
        var topology = postgres.CreateTopology("reads_query", 0, 1);
        await using var cluster = await TestClusters.StartAsync(topology.Settings);
        var client = new Pr2Client(cluster.Client);
        for (var i = 0; i < 30; i++)
        {
            await client.SendAsync(1, $"order/{i:D2}", MessageKind.Insert, $$"""{"customer": "{{(i % 3 == 0 ? "c1" : "c2")}}", "n": {{i}}}""");
        }

        var expected = Enumerable.Range(0, 30).Where(i => i % 3 == 0).Select(i => $"order/{i:D2}").ToList();
        var seen = new List<string>();
        string? cursor = null;
        var pages = 0;
        do
        {
            var page = await client.QueryRecordsAsync(1, "order", """{"customer": "c1"}""", cursor, limit: 3, ReadConsistency.Strong);
            Assert.True(page.Mark >= 30, $"a strong query reflects every acknowledged write (mark {page.Mark})");
            seen.AddRange(page.Records.Select(r => r.Actor.ActorId));
            cursor = page.NextCursor;
            // Writes during paging: a new match before the cursor and changes to records not yet seen.
            await client.SendAsync(1, $"order/00a{pages}", MessageKind.Insert, """{"customer": "c1"}""");
            Assert.True(++pages < 20, "paging did not end");
        }
        while (cursor is not null);

        Assert.Equal(seen.Distinct().Count(), seen.Count);
        Assert.Equal(seen.Order(StringComparer.Ordinal), seen);
        Assert.Empty(expected.Except(seen));
        Assert.All(seen, id => Assert.True(expected.Contains(id) || id.StartsWith("order/00a", StringComparison.Ordinal), id));

        var bad = await Assert.ThrowsAsync<Pr2Exception>(() => client.QueryRecordsAsync(1, "order", "[1]"));
        Assert.Equal(ErrorCode.BadBody, bad.Code);
        Assert.Equal(ErrorCode.BadMessage, (await Assert.ThrowsAsync<Pr2Exception>(() => client.QueryRecordsAsync(1, "order", null, "not a cursor!"))).Code);
    }

    [Fact]
    public async Task A_query_is_one_snapshot_no_torn_results_while_writes_go_on()
    {
        var topology = postgres.CreateTopology("reads_snapshot", 0, 1);
        await using var cluster = await TestClusters.StartAsync(topology.Settings);
        var client = new Pr2Client(cluster.Client);
        var actors = Enumerable.Range(0, 20).Select(i => $"acct/{i:D2}").ToList();
        await Task.WhenAll(actors.Select(a => client.SendAsync(1, a, MessageKind.Insert, """{"n": 0}""")));

        // Writers change the records while readers query all of them, eventual and strong, again and again.
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var writers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            for (var i = 0; i < 5000 && !stop.IsCancellationRequested; i++)
            {
                await client.SendAsync(1, actors[(w * 7 + i * 3) % actors.Count], MessageKind.Modify, $$"""{"n": {{i}}, "w": {{w}}}""");
            }
        })).ToList();
        var pages = new List<RecordPage>();
        while (pages.Count < 40 && !stop.IsCancellationRequested)
        {
            pages.Add(await client.QueryRecordsAsync(1, "acct", limit: 1000, consistency: pages.Count % 2 == 0 ? ReadConsistency.Eventual : ReadConsistency.Strong));
        }

        await stop.CancelAsync();
        await Task.WhenAll(writers);
        var journal = new List<JournalEntry>();
        for (var page = await client.ReadJournalAsync(1, 1, 1000); page.Count > 0; page = await client.ReadJournalAsync(1, journal[^1].Position + 1, 1000))
        {
            journal.AddRange(page);
        }

        // Each page is the records exactly as the journal up to its mark makes them: the actors that exist by then,
        // each at the version its entries up to the mark give it, none reflecting anything later.
        Assert.True(pages.Select(p => p.Mark).Distinct().Count() >= 10, "the queries saw the writes progress");
        foreach (var page in pages)
        {
            var existing = actors.Where(a => journal.Any(e => e.Actor.ActorId == a && e.Position <= page.Mark));
            Assert.Equal(existing, page.Records.Select(r => r.Actor.ActorId));
            foreach (var record in page.Records)
            {
                var upToMark = journal.Where(e => e.Actor.ActorId == record.Actor.ActorId && e.Position <= page.Mark).ToList();
                Assert.True(record.Version == upToMark.Count && record.LastPosition == upToMark[^1].Position,
                    $"{record.Actor} at version {record.Version} (position {record.LastPosition}) in a page at mark {page.Mark}, where the journal gives version {upToMark.Count} (position {upToMark[^1].Position})");
            }
        }
    }
}
