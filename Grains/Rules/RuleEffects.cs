using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Npgsql;
using NpgsqlTypes;
using PR2.Grains.Json;

namespace PR2.Grains.Rules;

/// <summary>What a rule writes, always inside its agent's transaction: view documents, outbox messages, parked entries.</summary>
public static class RuleEffects
{
    public static async Task SendAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string rule, JournalEntry source, int actionIndex,
        Guid messageId, ActorRef target, MessageKind kind, JsonObject body, CancellationToken cancellationToken)
    {
        CheckTarget(target);

        // The same id again (a replay) is the same message: keep the first.
        await using var command = new NpgsqlCommand("""
            insert into pr2_outbox (message_id, rule, source_position, action_index, target_shard, target_actor, kind, body, caused_counter, caused_shard, hops)
            values ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11)
            on conflict (message_id) do nothing
            """, connection, transaction);
        command.Parameters.Add(new() { Value = messageId });
        command.Parameters.Add(new() { Value = rule });
        command.Parameters.Add(new() { Value = source.Position });
        command.Parameters.Add(new() { Value = actionIndex });
        command.Parameters.Add(new() { Value = target.Shard });
        command.Parameters.Add(new() { Value = target.ActorId });
        command.Parameters.Add(new() { Value = (short)kind });
        command.Parameters.Add(new() { Value = body.ToJsonString() });
        command.Parameters.Add(new() { Value = source.Stamp.Counter });
        command.Parameters.Add(new() { Value = source.Stamp.Shard });
        command.Parameters.Add(new() { Value = (short)(source.Hops + 1) });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Refuses (<see cref="RuleFailure"/>) a target no rule may send to.</summary>
    public static void CheckTarget(ActorRef target)
    {
        // PR2's own actors (the shard map, rules, agent registrations) change only through its operations: a rule whose
        // template renders one ("shard/{entry.key}" in shard 0) would rewrite the topology. Its entry is parked instead.
        if (!ActorRef.TryValidate(target.Shard, target.ActorId, out var problem))
        {
            throw new RuleFailure($"send to \"{target.ActorId}\" in shard {target.Shard}: {problem}");
        }

        if (target.IsReserved)
        {
            throw new RuleFailure($"send to {target}: {ReservedActorRefusal}");
        }
    }

    /// <summary>Why a rule's message to one of PR2's own actors is refused (parked by the rule, failed by the relay).</summary>
    public static string ReservedActorRefusal { get; } =
        $"the {string.Join(", ", ActorRef.ReservedTypes)} actors of shard 0 are PR2's own, changed only through its operations; a rule cannot send them messages";

    /// <summary>
    /// Changes one document of a view: in <c>pr2_view</c>, or, for a rebuild of the rule's views (<paramref name="rebuild"/>),
    /// in that rebuild's rows (<c>pr2_view_rebuild</c>), which its swap later puts in place of the rule's documents.
    /// </summary>
    public static async Task ChangeViewAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string rule, long position,
        string view, string key, ViewMode mode, JsonObject? value, CancellationToken cancellationToken, bool rebuild = false)
    {
        // The rebuild's rows carry the rule's name where the view's carry the rule that last wrote them.
        var (table, scope) = rebuild ? ("pr2_view_rebuild", "projection = $3 and ") : ("pr2_view", "");
        if (mode == ViewMode.Delete)
        {
            await using var delete = new NpgsqlCommand($"delete from {table} where {scope}view = $1 and key = $2", connection, transaction);
            delete.Parameters.Add(new() { Value = view });
            delete.Parameters.Add(new() { Value = key });
            if (rebuild)
            {
                delete.Parameters.Add(new() { Value = rule });
            }

            await delete.ExecuteNonQueryAsync(cancellationToken);
            return;
        }

        var current = mode == ViewMode.Set ? null : await ReadForUpdateAsync(connection, transaction, rebuild ? rule : null, view, key, cancellationToken);
        var doc = mode switch
        {
            ViewMode.Set => value!.ToJsonString(),
            ViewMode.Merge => JsonMergePatch.Apply(current?.ToJsonString() ?? "{}", value!.ToJsonString()),
            _ => Add(current ?? [], value!).ToJsonString(),
        };
        await using var upsert = new NpgsqlCommand(rebuild
            ? """
              insert into pr2_view_rebuild (projection, view, key, doc, position) values ($4, $1, $2, $3::jsonb, $5)
              on conflict (projection, view, key) do update set doc = excluded.doc, position = excluded.position
              """
            : """
              insert into pr2_view (view, key, doc, rule, position) values ($1, $2, $3::jsonb, $4, $5)
              on conflict (view, key) do update set doc = excluded.doc, rule = excluded.rule, position = excluded.position, updated_at = now()
              """, connection, transaction);
        upsert.Parameters.Add(new() { Value = view });
        upsert.Parameters.Add(new() { Value = key });
        upsert.Parameters.Add(new() { Value = doc });
        upsert.Parameters.Add(new() { Value = rule });
        upsert.Parameters.Add(new() { Value = position });
        await upsert.ExecuteNonQueryAsync(cancellationToken);
    }

    public static async Task ParkAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string rule, int shard, long position, string reason, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("""
            insert into pr2_dead_letter (rule, shard, position, reason) values ($1, $2, $3, $4)
            on conflict (rule, shard, position) do update set reason = excluded.reason, parked_at = now(), retry = false
            """, connection, transaction);
        command.Parameters.Add(new() { Value = rule });
        command.Parameters.Add(new() { Value = shard });
        command.Parameters.Add(new() { Value = position });
        command.Parameters.Add(new() { Value = reason });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Positions of this rule's parked entries in <paramref name="shard"/> that were asked to run again, locked.</summary>
    public static async Task<IReadOnlyList<long>> TakeRetriesAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string rule, int shard, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("""
            delete from pr2_dead_letter where rule = $1 and shard = $2 and retry returning position
            """, connection, transaction);
        command.Parameters.Add(new() { Value = rule });
        command.Parameters.Add(new() { Value = shard });
        var positions = new List<long>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            positions.Add(reader.GetInt64(0));
        }

        positions.Sort();
        return positions;
    }

    private static async Task<JsonObject?> ReadForUpdateAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string? rebuild, string view, string key,
        CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(rebuild is null
            ? "select doc::text from pr2_view where view = $1 and key = $2 for update"
            : "select doc::text from pr2_view_rebuild where view = $1 and key = $2 and projection = $3 for update", connection, transaction);
        command.Parameters.Add(new() { Value = view });
        command.Parameters.Add(new() { Value = key });
        if (rebuild is not null)
        {
            command.Parameters.Add(new() { Value = rebuild });
        }

        return await command.ExecuteScalarAsync(cancellationToken) is string text ? JsonNode.Parse(text)!.AsObject() : null;
    }

    private static JsonObject Add(JsonObject current, JsonObject increments)
    {
        var result = (JsonObject)current.DeepClone();
        foreach (var (name, increment) in increments)
        {
            var by = Number(increment, $"add.{name}");
            var existing = result[name] is null ? 0m : Number(result[name], $"the document's {name}");
            result[name] = existing + by;
        }

        return result;
    }

    private static decimal Number(JsonNode? node, string what) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.Number
            ? decimal.Parse(v.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture)
            : throw new RuleFailure($"{what} is {node?.ToJsonString() ?? "null"}, not a number");
}
