using JasperFx;
using JasperFx.Events;
using Marten;

namespace PR2.Bench;

/// <summary>Marten's event store on the same server: one event per session, each writer its own stream.</summary>
internal static class MartenPaths
{
    public static async Task RunAsync(Runner runner, string connectionString, IReadOnlyList<int> writerCounts)
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
        }
    }
}
