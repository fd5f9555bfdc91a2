using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Npgsql;
using PR2.Grains.Json;
using PR2.Grains.Rules;
using PR2.Grains.Storage;

namespace PR2.Grains;

/// <summary>
/// Manages rules as records of <c>rule/{name}</c> actors in shard 0: <c>{"definition": {...}, "paused": false,
/// "removed": false, "start": {"1": 120}}</c>. Every change is a journaled message, so a rule's record version is
/// its version and shard 0's journal is its history. A removed rule is flagged (its name can be used again),
/// and its marks and parked entries are dropped so that a rule added again under that name starts afresh.
/// </summary>
public sealed class RulesGrain(ShardRegistry shards, RuleSet ruleSet, IEnumerable<IRule> codeRules, ILogger<RulesGrain> logger) : Grain, IRulesGrain
{
    private const int ControlShard = 0;
    private const string Sender = "rules";

    public async Task<RuleInfo> Put(string definitionJson)
    {
        var definition = RuleParser.Parse(definitionJson, shards.ShardCodes);
        if (codeRules.Any(rule => rule.Name == definition.Name))
        {
            throw new Pr2Exception(ErrorCode.BadRule, $"$.name: {definition.Name} is the name of a rule written in C# in the silo; choose another");
        }

        var actor = Actor(definition.Name);
        var current = await actor.GetRecord();
        var state = LiveOrUnreadable(current);
        var start = state?["start"] as JsonObject ?? [];
        foreach (var shard in shards.ShardCodes.Where(definition.Follows).Where(s => !start.ContainsKey(Key(s))))
        {
            // "now" means the entries stamped after the shard's clock when the rule (or its new shard) was added. A shard
            // whose removal began is never followed by a rule added since (its journal is final, and older than the rule;
            // its drain may be over): its start is past every stamp.
            start[Key(shard)] = await DirectoryGrain.RemovalOfAsync(GrainFactory, shard) is not null ? long.MaxValue
                : definition.StartFromBeginning ? 0 : (await GrainFactory.GetGrain<IShardWriterGrain>(shard).GetHead()).Clock;
        }

        foreach (var removed in shards.RemovedCodes.Where(s => !start.ContainsKey(Key(s))))
        {
            // Released on this silo, perhaps not yet on one whose agents would otherwise read it from the beginning.
            start[Key(removed)] = long.MaxValue;
        }

        var desired = new JsonObject
        {
            ["definition"] = definition.Source.DeepClone(),
            ["paused"] = state?["paused"]?.GetValue<bool>() ?? false,
            ["removed"] = false,
            ["start"] = start.DeepClone(),
            ["generation"] = state?["generation"]?.GetValue<string>() ?? Guid.NewGuid().ToString("N")[..12],
        };
        var info = await WriteAsync(actor, current, desired);
        ruleSet.Put(new RuleAgent(definition, info));
        return info;
    }

    public async Task<IReadOnlyList<RuleInfo>> List()
    {
        await using var command = shards.Get(ControlShard).Primary.CreateCommand(
            "select distinct actor_id from pr2_journal where actor_id like 'rule/%' order by actor_id");
        var ids = new List<string>();
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                ids.Add(reader.GetString(0));
            }
        }

        var records = await Task.WhenAll(ids.Select(id => GrainFactory.GetGrain<IActorGrain>(ControlShard, id, null).GetRecord()));
        var rules = new List<RuleInfo>();
        foreach (var record in records)
        {
            // One record that is not a rule (written around PR2's operations) must not hide every other rule.
            try
            {
                if (Live(record) is not null)
                {
                    rules.Add(ToInfo(record.Actor.Key, record));
                }
            }
            catch (Pr2Exception e) when (e.Code == ErrorCode.BadRule)
            {
                Log.RuleRecordUnreadable(logger, record.Actor.ToString(), e.Message);
            }
        }

        return rules;
    }

    public async Task<RuleInfo> Get(string name)
    {
        var record = await Actor(name).GetRecord();
        return Live(record) is not null ? ToInfo(name, record) : throw Unknown(name);
    }

    public async Task<RuleInfo> SetPaused(string name, bool paused)
    {
        var actor = Actor(name);
        var current = await actor.GetRecord();
        var state = Live(current) ?? throw Unknown(name);
        if (state["paused"]?.GetValue<bool>() == paused)
        {
            return ToInfo(name, current);
        }

        var desired = (JsonObject)state.DeepClone();
        desired["paused"] = paused;
        var info = await WriteAsync(actor, current, desired);
        try
        {
            ruleSet.Put(new RuleAgent(RuleParser.Parse(info.Definition, shards.NamedCodes), info));
        }
        catch (Pr2Exception e) when (e.Code == ErrorCode.BadRule)
        {
            // Done (written): this silo cannot run the rule, and says so in its log; the others go by the directory.
            Log.RuleNotLoaded(logger, name, e.Message);
        }

        return info;
    }

    public async Task Remove(string name)
    {
        var actor = Actor(name);
        var current = await actor.GetRecord();
        var state = Live(current) ?? throw Unknown(name);
        var desired = (JsonObject)state.DeepClone();
        desired["removed"] = true;
        await WriteAsync(actor, current, desired);
        ruleSet.Remove(name);

        // The marks and parked entries of every generation of the rule, on every replica that answers. One that does not
        // keeps them as harmless leftovers: a rule added again under this name gets a new generation, and so new keys.
        foreach (var database in shards.Sets.SelectMany(set => set.Live.Select(i => set.Replicas[i])))
        {
            try
            {
                await using var batch = new NpgsqlBatch();
                batch.BatchCommands.Add(new NpgsqlBatchCommand("delete from pr2_agent_mark where agent = $1 or agent like $2")
                    { Parameters = { new() { Value = RuleAgent.Prefix + name }, new() { Value = LikePattern.StartingWith(RuleAgent.Prefix + name + "#") } } });
                batch.BatchCommands.Add(new NpgsqlBatchCommand("delete from pr2_dead_letter where rule = $1 or rule like $2")
                    { Parameters = { new() { Value = RuleAgent.Prefix + name }, new() { Value = LikePattern.StartingWith(RuleAgent.Prefix + name + "#") } } });
                await using var connection = await database.OpenConnectionAsync();
                batch.Connection = connection;
                await batch.ExecuteNonQueryAsync();
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                Log.RuleLeftoversKept(logger, name, e.Message);
            }
        }
    }

    public async Task<IReadOnlyList<ParkedEntry>> GetParked(string? rule)
    {
        // Each replica runs the rules over its own journal; the primary's parked entries are the ones shown.
        var marks = ruleSet.Agents.Select(a => a.MarkName).Concat(codeRules.Select(r => RuleAgent.Prefix + r.Name))
            .Where(m => rule is null || m == RuleAgent.MarkNameOf(rule, "") || m.StartsWith(RuleAgent.Prefix + rule + "#", StringComparison.Ordinal))
            .ToArray();
        var parked = new List<ParkedEntry>();
        foreach (var set in shards.Sets)
        {
            // Entries the rule could not handle, and messages it sent that the receiver refused.
            var shard = set.Shard;
            await using var command = set.PrimaryReader.CreateCommand("""
                select rule, position, reason, parked_at from pr2_dead_letter
                where rule = any($1) and shard = $2
                union all
                select rule, source_position, 'delivery to ' || target_shard || ':' || target_actor || ' refused: ' || failure, created_at from pr2_outbox
                where rule = any($3) and failure is not null
                order by 1, 2
                """);
            command.Parameters.Add(new NpgsqlParameter { Value = marks });
            command.Parameters.Add(new NpgsqlParameter { Value = shard });
            command.Parameters.Add(new NpgsqlParameter { Value = marks.Select(RuleNameOfMark).Select(n => RuleAgent.Prefix + n).Distinct().ToArray() });
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                parked.Add(new ParkedEntry(RuleNameOfMark(reader.GetString(0)), shard, reader.GetInt64(1), reader.GetString(2), reader.GetFieldValue<DateTimeOffset>(3)));
            }
        }

        return parked;
    }

    public async Task<int> RetryParked(string rule)
    {
        var info = await Get(rule);
        var mark = RuleAgent.MarkNameOf(rule, info.Generation);
        var queued = 0;
        foreach (var set in shards.Sets)
        {
            var shard = set.Shard;
            if (await DirectoryGrain.RemovalOfAsync(GrainFactory, shard) is { } removal && ShardRemoval.Order(removal.State) >= ShardRemoval.Order(ShardRemoval.Releasing))
            {
                continue; // drained: nothing on it runs again
            }

            foreach (var replica in set.Live)
            {
                // Every replica parked the entry (each runs the rule); the primary's count is the one reported.
                await using var command = set.Replicas[replica].CreateCommand("update pr2_dead_letter set retry = true where rule = $1 and shard = $2");
                command.Parameters.Add(new NpgsqlParameter { Value = mark });
                command.Parameters.Add(new NpgsqlParameter { Value = shard });
                var count = await ReplicaCountAsync(command, rule);
                queued += replica == set.PrimaryIndex ? count : 0;
                if (count > 0)
                {
                    await GrainFactory.GetGrain<IAgentGrain>(Agents.AgentCatalog.Key(RuleAgent.Prefix + rule, shard, replica)).Wake();
                }

                // Refused deliveries are offered to their receivers again (say, after the receiver's record was fixed).
                await using var redeliver = set.Replicas[replica].CreateCommand("update pr2_outbox set failure = null where rule = $1 and failure is not null");
                redeliver.Parameters.Add(new NpgsqlParameter { Value = RuleAgent.Prefix + rule });
                var refused = await ReplicaCountAsync(redeliver, rule);
                queued += replica == set.PrimaryIndex ? refused : 0;
                if (refused > 0)
                {
                    await GrainFactory.GetGrain<IOutboxRelayGrain>(shard).Wake();
                }
            }
        }

        return queued;
    }

    // A replica that does not answer retries nothing now; it parked the same entries, which wait for the next retry.
    private async Task<int> ReplicaCountAsync(NpgsqlCommand command, string rule)
    {
        try
        {
            return await command.ExecuteNonQueryAsync();
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            Log.RuleLeftoversKept(logger, rule, e.Message);
            return 0;
        }
    }

    // "rule-x#generation" (or "rule-x") -> "x".
    private static string RuleNameOfMark(string mark)
    {
        var name = mark[RuleAgent.Prefix.Length..];
        var hash = name.LastIndexOf('#');
        return hash < 0 ? name : name[..hash];
    }

    private IActorGrain Actor(string name) => GrainFactory.GetGrain<IActorGrain>(ControlShard, $"rule/{name}", null);

    // The record's state when it holds a rule that was not removed; null otherwise.
    private static JsonObject? Live(ActorRecord record) => Readable(record.Actor.Key, () =>
        record.Status == RecordStatus.Live && record.State is { } text && JsonNode.Parse(text) is JsonObject state
        && state["removed"]?.GetValue<bool>() != true
            ? state
            : null);

    private static async Task<RuleInfo> WriteAsync(IActorGrain actor, ActorRecord current, JsonObject desired)
    {
        var self = new ActorRef(ControlShard, $"rule/{current.Actor.Key}");
        var previous = current.State is { } text ? JsonNode.Parse(text)!.AsObject() : null;
        var message = previous is null || current.Status != RecordStatus.Live
            ? new Message(MessageIds.New(), Sender, self, MessageKind.Insert, desired.ToJsonString(), current.Version)
            : new Message(MessageIds.New(), Sender, self, MessageKind.Modify, JsonMergePatch.Diff(previous, desired).ToJsonString(), current.Version);
        try
        {
            var ack = await actor.Send(message);
            return ToInfo(current.Actor.Key, desired, ack.Version);
        }
        catch (Pr2Exception e) when (e.Code == ErrorCode.VersionMismatch)
        {
            throw new Pr2Exception(ErrorCode.VersionMismatch, $"rule {current.Actor.Key} was changed at the same moment by someone else; read it again and retry");
        }
    }

    private static RuleInfo ToInfo(string name, ActorRecord record) => Readable(name, () => ToInfo(name, JsonNode.Parse(record.State!)!.AsObject(), record.Version));

    private static RuleInfo ToInfo(string name, JsonObject state, long version) =>
        new(name, version, state["paused"]?.GetValue<bool>() ?? false,
            (state["definition"] as JsonObject ?? throw new FormatException("it has no definition object")).ToJsonString(),
            (state["start"] as JsonObject ?? []).ToDictionary(
                p => int.Parse(p.Key, CultureInfo.InvariantCulture),
                p => p.Value?.GetValue<long>() ?? throw new FormatException($"start of shard {p.Key} is not a stamp")),
            state["generation"]?.GetValue<string>() ?? "");

    // A record that is not a rule PR2 wrote is replaced as if there were none.
    private static JsonObject? LiveOrUnreadable(ActorRecord record)
    {
        try
        {
            return Live(record);
        }
        catch (Pr2Exception e) when (e.Code == ErrorCode.BadRule)
        {
            return null;
        }
    }

    // A rule record in a shape PR2 did not write (sent around the rules API) is a refusal naming it, not a crash.
    private static T Readable<T>(string name, Func<T> read)
    {
        try
        {
            return read();
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or OverflowException)
        {
            throw new Pr2Exception(ErrorCode.BadRule, $"the record of rule {name} is not a rule PR2 wrote ({e.Message}); put the rule again to replace it");
        }
    }

    private static string Key(int shard) => shard.ToString(CultureInfo.InvariantCulture);

    private static Pr2Exception Unknown(string name) => new(ErrorCode.UnknownRule, $"there is no rule named '{name}'");
}
