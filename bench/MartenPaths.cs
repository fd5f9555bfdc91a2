using JasperFx;
using JasperFx.Events;
using Marten;

namespace PR2.Bench;

/// <summary>
/// Marten's event store on the same server: one event per session, each writer its own stream; and (marten-batch) 100
/// events per session over 64 streams of the batcher's own, Marten's bulk append in one transaction.
/// </summary>
internal static class MartenPaths
{
    private const int BatchEvents = 100;

    public static async Task RunAsync(Runner runner, string connectionString, IReadOnlyList<int> writerCounts, IReadOnlyList<int> batcherCounts)
    {
        foreach (var (path, mode) in new[] { ("marten", EventAppendMode.Rich), ("marten-quick", EventAppendMode.Quick) })
        {
            using var store = DocumentStore.For(options =>
            {
                options.Connection(connectionString);
                options.DatabaseSchemaName = path.Replace('-', '_');
                options.AutoCreateSchemaObjects = AutoCreate.All;
                options.Events.AppendMode = mode;
                options.Events.AddEventType<OrderPlaced>();
            });
            await store.Storage.ApplyAllConfiguredChangesToDatabaseAsync();

            foreach (var writers in writerCounts)
            {
                var streams = Enumerable.Range(0, writers).Select(_ => Guid.NewGuid()).ToArray();
                await runner.MeasureAsync(path, 1, writers, 1, async (w, n) =>
                {
                    await using var session = store.LightweightSession();
                    session.Events.Append(streams[w], new OrderPlaced($"c-{w:D5}", n, n % 1000 + 0.95m, "USD",
                        [new OrderLine("A-100", 2, 19.99m), new OrderLine("B-220", 1, 4.5m)], "benchmark payload of about two hundred bytes"));
                    await session.SaveChangesAsync();
                });
            }

            if (mode != EventAppendMode.Rich)
            {
                continue;
            }

            foreach (var batchers in batcherCounts)
            {
                var streams = Enumerable.Range(0, batchers).Select(_ => Enumerable.Range(0, 64).Select(_ => Guid.NewGuid()).ToArray()).ToArray();
                await runner.MeasureAsync("marten-batch", 1, batchers, BatchEvents, async (w, n) =>
                {
                    await using var session = store.LightweightSession();
                    for (var i = 0; i < BatchEvents; i++)
                    {
                        session.Events.Append(streams[w][((n * BatchEvents) + i) % 64], new OrderPlaced($"c-{w:D5}", n, n % 1000 + 0.95m, "USD",
                            [new OrderLine("A-100", 2, 19.99m), new OrderLine("B-220", 1, 4.5m)], "benchmark payload of about two hundred bytes"));
                    }

                    await session.SaveChangesAsync();
                });
            }
        }
    }
}
