using Npgsql;

namespace PR2.Tests.Infrastructure;

/// <summary>
/// The rules the fault suite runs during its faults, and the checker of what they and the object directory made of the
/// converged journals: a data rule audits every item insert in shard 0 and counts it in a view; a C# rule
/// (<see cref="Examples.TombstoneForCanceledItems"/>) leaves a tombstone in shard 0 for every canceled item and counts it.
/// Every count is taken from the databases and compared with the journals, never with what the rules were expected to do.
/// </summary>
public static class RuleWorkload
{
    public const string AuditRule = """
        {
          "name": "audit-items",
          "on": {"type": "item", "kinds": ["insert"], "shards": [1, 2, 3]},
          "do": [
            {"send": {"shard": 0, "actor": "audit/item-{entry.shard}-{entry.key}", "kind": "insert", "body": {"item": "{entry.actor}"}}},
            {"view": {"name": "item_inserts", "key": "all", "add": {"n": 1}}}
          ],
          "start": "beginning"
        }
        """;

    /// <summary>What the checker found; every field but <see cref="Sources"/> must be 0.</summary>
    public sealed record Findings(long Sources, long EffectsMissing, long EffectsDoubled, long EffectsConflicted, long ViewErrors, long DirectoryErrors, List<string> Examples);

    /// <summary>
    /// True when every rule on every replica of every source shard has applied its whole journal and every outbox row is
    /// settled: from then on, no rule effect is still on its way.
    /// </summary>
    public static async Task<bool> SettledAsync(IReadOnlyDictionary<int, NpgsqlDataSource[]> replicas)
    {
        foreach (var (shard, databases) in replicas.Where(r => r.Key != 0))
        {
            foreach (var database in databases)
            {
                var behind = await ScalarAsync(database, """
                    select (select count(*) from pr2_agent_mark where agent like 'rule-%' and agent not like '%~next' and shard = $1
                              and position = (select coalesce(max(position), 0) from pr2_journal)) <> 2
                         or exists (select 1 from pr2_outbox where delivered_at is null and failure is null)
                    """, shard);
                if (behind)
                {
                    return false;
                }
            }
        }

        return true;
    }

    /// <summary>Compares the converged databases with their journals; <paramref name="directoryHome"/> is shard 0's primary.</summary>
    public static async Task<Findings> CheckAsync(IReadOnlyDictionary<int, NpgsqlDataSource[]> replicas, NpgsqlDataSource directoryHome)
    {
        var examples = new List<string>();
        long sources = 0, missing = 0, doubled = 0, conflicted = 0, viewErrors = 0, directoryErrors = 0;

        // The sources, from each source shard's first replica (replicas are converged): item inserts and cancels.
        var expected = new Dictionary<string, long>(StringComparer.Ordinal);
        var directory = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (shard, databases) in replicas)
        {
            foreach (var (actorId, inserted, canceled) in await ActorsAsync(databases[0]))
            {
                directory[$"{shard}:{actorId}"] = canceled ? 2 : 1;
                if (shard != 0 && actorId.StartsWith("item/", StringComparison.Ordinal))
                {
                    var key = actorId["item/".Length..];
                    if (inserted)
                    {
                        expected[$"audit/item-{shard}-{key}"] = 1;
                        sources++;
                    }

                    if (canceled)
                    {
                        expected[$"tomb/item-{shard}-{key}"] = 1;
                        sources++;
                    }
                }
            }

            if (shard == 0)
            {
                continue;
            }

            foreach (var database in databases)
            {
                conflicted += await CountAsync(database, "select count(*) from pr2_outbox where failure is not null or conflict is not null", examples,
                    "select 'outbox ' || message_id || ': ' || coalesce(failure, conflict) from pr2_outbox where failure is not null or conflict is not null limit 3");

                // Each replica's views count its own journal's entries, each once.
                foreach (var (view, kind) in new[] { ("item_inserts", 1), ("item_cancels", 3) })
                {
                    var counted = await LongAsync(database, "select coalesce((select (doc->>'n')::numeric::bigint from pr2_view where view = $1 and key = 'all'), 0)", view);
                    var journal = await LongAsync(database, "select count(*) from pr2_journal where actor_type = 'item' and kind = $1", (short)kind);
                    if (counted != journal)
                    {
                        viewErrors++;
                        examples.Add($"shard {shard}: view {view} counts {counted}, the journal holds {journal}");
                    }
                }
            }
        }

        // Every source entry's effect exactly once on every replica of shard 0, and no effect without a source.
        foreach (var database in replicas[0])
        {
            var effects = await EffectsAsync(database);
            foreach (var id in expected.Keys.Where(id => !effects.ContainsKey(id)))
            {
                missing++;
                examples.Add($"no {id}");
            }

            foreach (var (id, count) in effects)
            {
                var extra = expected.ContainsKey(id) ? count - 1 : count;
                doubled += extra;
                if (extra > 0)
                {
                    examples.Add($"{id} {count} times: {await DescribeAsync(database, id)}; its source: {await DescribeSourceAsync(replicas, id)}");
                }
            }
        }

        // The object directory: every actor with an insert or a cancel, once, with its status; nothing else.
        var listed = await DirectoryAsync(directoryHome);
        foreach (var (key, status) in directory)
        {
            if (listed.GetValueOrDefault(key) != status)
            {
                directoryErrors++;
                examples.Add($"directory: {key} is {listed.GetValueOrDefault(key)}, its journal says {status}");
            }
        }

        foreach (var key in listed.Keys.Where(k => !directory.ContainsKey(k)))
        {
            directoryErrors++;
            examples.Add($"directory: {key} listed, in no journal");
        }

        return new Findings(sources, missing, doubled, conflicted, viewErrors, directoryErrors, [.. examples.Take(20)]);
    }

    private static async Task<List<(string ActorId, bool Inserted, bool Canceled)>> ActorsAsync(NpgsqlDataSource database)
    {
        await using var command = database.CreateCommand("""
            select actor_id, bool_or(kind = 1), bool_or(kind = 3) from pr2_journal where kind in (1, 3) group by actor_id
            """);
        await using var reader = await command.ExecuteReaderAsync();
        var actors = new List<(string, bool, bool)>();
        while (await reader.ReadAsync())
        {
            actors.Add((reader.GetString(0), reader.GetBoolean(1), reader.GetBoolean(2)));
        }

        return actors;
    }

    private static async Task<Dictionary<string, long>> EffectsAsync(NpgsqlDataSource database)
    {
        await using var command = database.CreateCommand("""
            select actor_id, count(*) from pr2_journal where actor_type in ('audit', 'tomb') group by actor_id
            """);
        await using var reader = await command.ExecuteReaderAsync();
        var effects = new Dictionary<string, long>(StringComparer.Ordinal);
        while (await reader.ReadAsync())
        {
            effects[reader.GetString(0)] = reader.GetInt64(1);
        }

        return effects;
    }

    // An actor's entries, for a finding's example: id, kind, version, stamp, position, sender, cause.
    private static async Task<string> DescribeAsync(NpgsqlDataSource database, string actorId)
    {
        await using var command = database.CreateCommand("""
            select string_agg(format('%s %s v%s %s@%s at %s from %s caused by %s@%s', message_id, kind, actor_version, lamport_counter, lamport_shard,
                              position, sender, caused_by_counter, caused_by_shard), '; ' order by position)
            from pr2_journal where actor_id = $1
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = actorId });
        return (await command.ExecuteScalarAsync()) as string ?? "none";
    }

    // The source entries an effect (audit/item-{shard}-{key}, tomb/item-{shard}-{key}) stands for, on each replica of its shard.
    private static async Task<string> DescribeSourceAsync(IReadOnlyDictionary<int, NpgsqlDataSource[]> replicas, string effectId)
    {
        var parts = effectId.Split('/')[1].Split('-', 3);
        if (parts.Length != 3 || !int.TryParse(parts[1], out var shard) || !replicas.TryGetValue(shard, out var databases))
        {
            return "unknown";
        }

        var described = new List<string>();
        for (var i = 0; i < databases.Length; i++)
        {
            await using var outbox = databases[i].CreateCommand("""
                select string_agg(format('%s from %s at %s', message_id, rule, source_position), '; ') from pr2_outbox where target_actor = $1
                """);
            outbox.Parameters.Add(new NpgsqlParameter { Value = effectId });
            described.Add($"replica {i}: {await DescribeAsync(databases[i], $"item/{parts[2]}")}; outbox {await outbox.ExecuteScalarAsync() as string ?? "none"}");
        }

        return string.Join(" | ", described);
    }

    private static async Task<Dictionary<string, int>> DirectoryAsync(NpgsqlDataSource database)
    {
        await using var command = database.CreateCommand("select shard, actor_id, status from pr2_object_directory");
        await using var reader = await command.ExecuteReaderAsync();
        var listed = new Dictionary<string, int>(StringComparer.Ordinal);
        while (await reader.ReadAsync())
        {
            listed[$"{reader.GetInt32(0)}:{reader.GetString(1)}"] = reader.GetInt16(2);
        }

        return listed;
    }

    private static async Task<long> CountAsync(NpgsqlDataSource database, string sql, List<string> examples, string examplesSql)
    {
        var count = await LongAsync(database, sql);
        if (count > 0)
        {
            await using var command = database.CreateCommand(examplesSql);
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                examples.Add(reader.GetString(0));
            }
        }

        return count;
    }

    private static async Task<long> LongAsync(NpgsqlDataSource database, string sql, params object[] parameters)
    {
        await using var command = database.CreateCommand(sql);
        foreach (var parameter in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = parameter });
        }

        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task<bool> ScalarAsync(NpgsqlDataSource database, string sql, params object[] parameters)
    {
        await using var command = database.CreateCommand(sql);
        foreach (var parameter in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = parameter });
        }

        return (bool)(await command.ExecuteScalarAsync())!;
    }
}
