using Npgsql;
using NpgsqlTypes;

namespace PR2.Bench;

/// <summary>
/// The physical limit: journal-like rows written straight through Npgsql, durable commits, with the same
/// indexes as PR2's journal (position key, unique message id, unique actor version).
/// </summary>
internal static class RawPaths
{
    private const int BatchRows = 100;
    private const int CopyRows = 1000;

    public static async Task RunAsync(Runner runner, NpgsqlDataSource source, IReadOnlyList<int> writerCounts, IReadOnlyList<int> batcherCounts)
    {
        await using (var create = source.CreateCommand("""
            drop table if exists bench_journal;
            create table bench_journal (
                position bigint generated always as identity primary key,
                message_id uuid not null unique,
                actor_id text not null,
                actor_version bigint not null,
                kind smallint not null,
                body jsonb not null,
                recorded_at timestamptz not null default now(),
                unique (actor_id, actor_version));
            """))
        {
            await create.ExecuteNonQueryAsync();
        }

        // Each row writes its own actors (a run id in the actor id): a repeated writer count must not collide with the
        // rows of an earlier one on (actor_id, actor_version).
        foreach (var writers in writerCounts)
        {
            var run = Guid.NewGuid().ToString("N")[..6];
            await runner.MeasureAsync("raw-single", 1, writers, 1, async (w, n) =>
            {
                await using var insert = source.CreateCommand(
                    "insert into bench_journal (message_id, actor_id, actor_version, kind, body) values ($1, $2, $3, $4, $5::jsonb)");
                insert.Parameters.Add(new() { Value = MessageIds.New() });
                insert.Parameters.Add(new() { Value = $"single-{run}/{w}" });
                insert.Parameters.Add(new() { Value = n + 1 });
                insert.Parameters.Add(new() { Value = (short)1 });
                insert.Parameters.Add(new() { Value = Payload.Json(w, n) });
                await insert.ExecuteNonQueryAsync();
            });
        }

        // At the writer counts (against PR2's per-message rows) and the batcher counts (against pr2-batch).
        foreach (var writers in batcherCounts.Union(writerCounts).Order())
        {
            var run = Guid.NewGuid().ToString("N")[..6];
            await runner.MeasureAsync("raw-batch", 1, writers, BatchRows, async (w, n) =>
            {
                await using var insert = source.CreateCommand("""
                    insert into bench_journal (message_id, actor_id, actor_version, kind, body)
                    select m, a, v, 1, b::jsonb from unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[]) as r(m, a, v, b)
                    """);
                insert.Parameters.Add(new() { Value = Enumerable.Range(0, BatchRows).Select(_ => MessageIds.New()).ToArray() });
                insert.Parameters.Add(new() { Value = Enumerable.Range(0, BatchRows).Select(i => $"batch-{run}/{w}-{i}").ToArray() });
                insert.Parameters.Add(new() { Value = Enumerable.Repeat(n + 1, BatchRows).ToArray() });
                insert.Parameters.Add(new() { Value = Enumerable.Range(0, BatchRows).Select(i => Payload.Json(w, n)).ToArray() });
                await insert.ExecuteNonQueryAsync();
            });
        }

        foreach (var writers in writerCounts)
        {
            var run = Guid.NewGuid().ToString("N")[..6];
            await runner.MeasureAsync("raw-copy", 1, writers, CopyRows, async (w, n) =>
            {
                await using var connection = await source.OpenConnectionAsync();
                await using var copy = await connection.BeginBinaryImportAsync(
                    "copy bench_journal (message_id, actor_id, actor_version, kind, body) from stdin (format binary)");
                for (var i = 0; i < CopyRows; i++)
                {
                    await copy.StartRowAsync();
                    await copy.WriteAsync(MessageIds.New(), NpgsqlDbType.Uuid);
                    await copy.WriteAsync($"copy-{run}/{w}-{i}", NpgsqlDbType.Text);
                    await copy.WriteAsync(n + 1, NpgsqlDbType.Bigint);
                    await copy.WriteAsync((short)1, NpgsqlDbType.Smallint);
                    await copy.WriteAsync(Payload.Json(w, n), NpgsqlDbType.Jsonb);
                }

                await copy.CompleteAsync();
            });
        }
    }
}
