using System.Text.Json.Nodes;
using Npgsql;
using PR2.Grains.Agents;
using PR2.Grains.Records;
using PR2.Grains.Storage;

namespace PR2.Grains.Rules;

/// <summary>
/// Runs one rule over the journals of the shards it follows, as an agent named <c>rule-{name}</c>, on every replica:
/// its mark, view changes, outbox messages and parked entries are all in the replica it reads and commit in one
/// transaction, so each effect happens once per replica however often the agent crashes and replays, and a fail-over
/// finds them where it finds the journal. The messages it sends are named by the rule's generation, the source
/// entry's MessageId and the action, the same on every replica: the receiver keeps the first copy and answers the
/// others as duplicates, so each message takes effect once in the cluster. Each matching entry
/// runs inside a savepoint: if its condition or an action fails, its effects are undone and the entry is
/// parked (or, with <c>onError: halt</c>, the rule stops at it). An entry that <see cref="MaxHops"/> rule steps led
/// to is always parked: halting would stop the rule for good on every looping chain.
/// With <paramref name="rebuild"/>, it is the fold of a rebuild of the rule's views (<see cref="Projections.RuleViewRebuild"/>):
/// the same conditions and view actions, into the rebuild's rows under its own mark, never past the live rule's mark; it
/// sends nothing (the live rule did), and parks under its own mark (the swap puts those in place of the live rule's).
/// </summary>
public sealed class RuleAgent(RuleDefinition definition, RuleInfo info, bool rebuild = false) : IJournalAgent
{
    public const string Prefix = "rule-";

    /// <summary>An entry that this many rule steps led to runs no rule: a chain that loops (A triggers B triggers A) stops here, parked.</summary>
    public const int MaxHops = 8;

    public RuleDefinition Definition => definition;

    /// <summary>Why an entry at the hop limit is parked (the same words for data and C# rules).</summary>
    public static string HopLimitReason(JournalEntry entry) =>
        $"hop limit: {entry.Hops} rule steps led to this entry (the limit is {MaxHops}); does a rule chain loop?";

    public RuleInfo Info => info;

    public string Name => Prefix + definition.Name;

    public bool PerReplica => true;

    public bool Paused => info.Paused;

    public bool Follows(int shard) => definition.Follows(shard);

    public int HomeShard(int sourceShard) => sourceShard;

    public string MarkName => rebuild ? Projections.RuleViewRebuild.ShadowMark(LiveMarkName) : LiveMarkName;

    /// <summary>The mark of the live rule (this generation's), which a rebuild's fold never passes.</summary>
    public string LiveMarkName => MarkNameOf(definition.Name, info.Generation);

    /// <summary>The fold of a rebuild of this rule's views.</summary>
    public RuleAgent ForRebuild() => new(definition, info, rebuild: true);

    /// <summary>The mark (and parked-entry) key of a rule's generation; rules added before generations existed have none.</summary>
    public static string MarkNameOf(string rule, string generation) => generation.Length == 0 ? Prefix + rule : $"{Prefix}{rule}#{generation}";

    public Task<long> StartPositionAsync(int shard, NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken) =>
        JournalStore.PositionBeforeStampAsync(connection, StartAfter(shard), cancellationToken);

    private long StartAfter(int shard) => info.StartAfter.GetValueOrDefault(shard);

    public Task<long> ReadyUpToAsync(int sourceShard, NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken) =>
        rebuild ? Projections.RuleViewRebuild.ReadyUpToAsync(Name, Projections.RuleViewRebuild.FollowsOf(this), sourceShard, connection, transaction, cancellationToken)
            : Task.FromResult(long.MaxValue);

    public async Task<int> BeforeBatchAsync(AgentBatch batch, NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        if (rebuild)
        {
            return 0;
        }

        var retries = await RuleEffects.TakeRetriesAsync(connection, transaction, MarkName, batch.SourceShard, cancellationToken);
        foreach (var position in retries)
        {
            var entries = await JournalStore.ReadAsync(connection, batch.SourceShard, position - 1, 1, cancellationToken: cancellationToken);
            if (entries.Count == 1)
            {
                await RunAsync(batch.SourceShard, entries[0], connection, transaction, cancellationToken);
            }
        }

        return retries.Count;
    }

    public async Task ApplyAsync(AgentBatch batch, IReadOnlyList<JournalEntry> entries, NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        // Entries stamped before the rule started can still arrive on a replica that was behind: skip them everywhere alike.
        var startAfter = StartAfter(batch.SourceShard);
        foreach (var entry in entries.Where(e => e.Stamp.Counter > startAfter && definition.Matches(e)))
        {
            await RunAsync(batch.SourceShard, entry, connection, transaction, cancellationToken);
        }
    }

    private async Task RunAsync(int sourceShard, JournalEntry entry, NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        EntryContext context;
        try
        {
            var record = definition.UsesRecord ? await RecordAfterAsync(entry, connection, cancellationToken) : null;
            context = new EntryContext(entry, JsonNode.Parse(entry.Body)!.AsObject(), record);
            if (definition.Condition is { } condition && !condition.IsTrue(context))
            {
                return;
            }

            if (entry.Hops >= MaxHops)
            {
                throw new RuleFailure(HopLimitReason(entry));
            }
        }
        catch (RuleFailure failure) when (!definition.HaltOnError || entry.Hops >= MaxHops)
        {
            await RuleEffects.ParkAsync(connection, transaction, MarkName, sourceShard, entry.Position, failure.Message, cancellationToken);
            return;
        }
        catch (RuleFailure failure)
        {
            throw Halted(sourceShard, entry, failure);
        }

        // The actions' effects stand or fall together: a failing action undoes the ones before it.
        var failed = await EntrySavepoint.TryAsync(transaction, async () =>
        {
            foreach (var action in definition.Actions)
            {
                await RunActionAsync(action, context, connection, transaction, cancellationToken);
            }
        }, cancellationToken);
        if (failed is not null && definition.HaltOnError)
        {
            throw Halted(sourceShard, entry, failed);
        }

        if (failed is not null)
        {
            await RuleEffects.ParkAsync(connection, transaction, MarkName, sourceShard, entry.Position, failed.Message, cancellationToken);
        }
    }

    private AgentStoppedException Halted(int sourceShard, JournalEntry entry, RuleFailure failure) =>
        new(entry.Position, $"rule {definition.Name} halted at shard {sourceShard} position {entry.Position}: {failure.Message}", failure);

    private async Task RunActionAsync(RuleAction action, EntryContext context, NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        var entry = context.Entry;
        switch (action)
        {
            case SendAction send:
                var shardText = RuleTemplate.Render(send.Shard, context)?.ToJsonString().Trim('"');
                if (!int.TryParse(shardText, System.Globalization.CultureInfo.InvariantCulture, out var shard))
                {
                    throw new RuleFailure($"do[{send.Index}].send.shard: {shardText ?? "null"} is not a shard code");
                }

                var actorId = RuleTemplate.RenderText(send.Actor, context);
                if (!ActorRef.TryValidate(shard, actorId, out var problem))
                {
                    throw new RuleFailure($"do[{send.Index}].send.actor: \"{actorId}\": {problem}");
                }

                var body = RuleTemplate.Render(send.Body, context)!.AsObject();
                if (rebuild)
                {
                    // Judged as the live rule judged it (a send it refuses undoes the entry's views), never sent again.
                    RuleEffects.CheckTarget(new ActorRef(shard, actorId));
                    break;
                }

                var id = RuleMessageId.For(MarkName, entry.MessageId, send.Index.ToString(System.Globalization.CultureInfo.InvariantCulture));
                await RuleEffects.SendAsync(connection, transaction, Name, entry, send.Index, id, new ActorRef(shard, actorId), send.Kind, body, cancellationToken);
                break;
            case ViewAction view:
                var key = RuleTemplate.RenderText(view.Key, context);
                if (key.Length is 0 or > 500)
                {
                    throw new RuleFailure($"do[{view.Index}].view.key: \"{key}\" must be 1 to 500 characters");
                }

                var value = view.Value is null ? null : RuleTemplate.Render(view.Value, context)!.AsObject();
                await RuleEffects.ChangeViewAsync(connection, transaction, Name, entry.Position, view.View, key, view.Mode, value, cancellationToken, rebuild);
                break;
        }
    }

    // The actor's record right after this entry: its entries up to this position, folded. Deterministic on replay.
    private static async Task<JsonObject?> RecordAfterAsync(JournalEntry entry, NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var entries = await JournalStore.ReadActorAsync(connection, entry.Actor, entry.Position, cancellationToken);
        return RecordState.Fold(entries).State is { } state ? JsonNode.Parse(state)!.AsObject() : null;
    }
}
