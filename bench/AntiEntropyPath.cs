using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using PR2.Grains.Json;
using PR2.Grains.Replication;
using PR2.Grains.Writing;

namespace PR2.Bench;

/// <summary>
/// Anti-entropy catch-up: a replica that missed <c>entries</c> journal entries (written on another replica
/// through the journal writer) is brought up to date by ReplicaSync; reports entries per second.
/// </summary>
internal static class AntiEntropyPath
{
    public static async Task<ResultRow> RunAsync(NpgsqlDataSource source, NpgsqlDataSource target, int entries, ResourceMeter meter)
    {
        Console.Write($"  {"anti-entropy",-13} a replica that missed {entries:N0} entries ");
        await using (var writer = await JournalWriter.OpenAsync(1, source, 1000, NullLogger.Instance))
        {
            // 250 concurrent appends keep the writer's batches full; each is a first message to its own actor.
            await Parallel.ForEachAsync(Enumerable.Range(0, entries), new ParallelOptions { MaxDegreeOfParallelism = 250 }, async (i, _) =>
            {
                var actor = new ActorRef(1, $"catchup/{i}");
                var body = MessageBody.Parse(MessageKind.Insert, Payload.Json(i % 100, i), 4096);
                await writer.AppendAsync(new AppendRequest(
                    new Message(MessageIds.New(), "bench", actor, MessageKind.Insert, body.Canonical),
                    body.Canonical, MessageBody.ContentHash(actor, MessageKind.Insert, body.Canonical), 1));
            });
        }

        var before = meter.CpuSeconds();
        var walBefore = await meter.WalBytesAsync();
        var clock = Stopwatch.StartNew();
        var moved = await ReplicaSync.PushAllAsync(source, target, batchSize: 2000);
        var elapsed = clock.Elapsed;
        var after = meter.CpuSeconds();
        var walAfter = await meter.WalBytesAsync();
        var perThousand = 1000.0 / Math.Max(1, moved);
        var row = new ResultRow("anti-entropy", 1, 1, moved, elapsed.TotalSeconds, moved / elapsed.TotalSeconds, double.NaN, double.NaN, double.NaN,
            moved == entries ? 0 : entries - moved, (after.Client - before.Client) * perThousand, 0, (after.Postgres - before.Postgres) * perThousand, 0,
            (walAfter - walBefore) / (double)Math.Max(1, moved));
        Console.WriteLine($" {row.MessagesPerSecond,9:N0} entries/s ({moved:N0} in {elapsed.TotalSeconds:0.0} s)");
        return row;
    }
}
