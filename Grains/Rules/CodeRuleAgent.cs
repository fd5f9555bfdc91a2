using System.Text.Json.Nodes;
using Npgsql;
using PR2.Grains.Agents;

namespace PR2.Grains.Rules;

/// <summary>
/// Runs a C# rule (<see cref="IRule"/>) as an agent named <c>rule-{name}</c>, like <see cref="RuleAgent"/> runs a
/// data rule: on every replica, with effects, parked entries and mark in one transaction in that replica. It applies an
/// entry only once the records agent of that database has (so queries see records at least that new). Message
/// ids are named by the source entry's MessageId, target and kind, so a replay (or the run on another replica) whose
/// query returns rows in another order sends the same ones. With <paramref name="rebuild"/>, it is the fold of a rebuild
/// of the rule's views (<see cref="Projections.RuleViewRebuild"/>), as <see cref="RuleAgent"/>'s.
/// </summary>
public sealed class CodeRuleAgent(IRule rule, bool rebuild = false) : IJournalAgent
{
    public string Name => RuleAgent.Prefix + rule.Name;

    public string MarkName => rebuild ? Projections.RuleViewRebuild.ShadowMark(Name) : Name;

    /// <summary>The fold of a rebuild of this rule's views.</summary>
    public CodeRuleAgent ForRebuild() => new(rule, rebuild: true);

    public bool PerReplica => true;

    public bool Follows(int shard) => rule.Follows(shard);

    public int HomeShard(int sourceShard) => sourceShard;

    public async Task<long> ReadyUpToAsync(int sourceShard, NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        var records = await AgentMarks.ReadAsync(connection, RecordsProjector.AgentName, sourceShard, cancellationToken);
        return rebuild
            ? Math.Min(records, await Projections.RuleViewRebuild.ReadyUpToAsync(Name, follows: Name, sourceShard, connection, transaction, cancellationToken))
            : records;
    }

    public async Task ApplyAsync(AgentBatch batch, IReadOnlyList<JournalEntry> entries, NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        foreach (var entry in entries.Where(Matches))
        {
            if (entry.Hops >= RuleAgent.MaxHops)
            {
                await RuleEffects.ParkAsync(connection, transaction, MarkName, batch.SourceShard, entry.Position, RuleAgent.HopLimitReason(entry), cancellationToken);
                continue;
            }

            var failed = await EntrySavepoint.TryAsync(transaction, async () =>
            {
                var effects = await rule.HandleAsync(new RuleInput(entry, JsonNode.Parse(entry.Body)!.AsObject(), connection, transaction), cancellationToken);
                await ApplyEffectsAsync(batch.SourceShard, entry, effects, connection, transaction, cancellationToken);
            }, cancellationToken);
            if (failed is not null)
            {
                await RuleEffects.ParkAsync(connection, transaction, MarkName, batch.SourceShard, entry.Position, failed.Message, cancellationToken);
            }
        }
    }

    private bool Matches(JournalEntry entry) =>
        rule.Kinds.Contains(entry.Kind) && ActorTypePattern.Matches(rule.TypePattern, entry.Actor.Type);

    private async Task ApplyEffectsAsync(int sourceShard, JournalEntry entry, IReadOnlyList<RuleEffect> effects, NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < effects.Count; i++)
        {
            switch (effects[i])
            {
                case SendEffect send when rebuild:
                    // Judged as the live rule judged it, never sent again.
                    RuleEffects.CheckTarget(send.To);
                    break;
                case SendEffect send:
                    var what = $"{send.To}/{send.Kind}";
                    var nth = seen[what] = seen.GetValueOrDefault(what) + 1;
                    var id = RuleMessageId.For(Name, entry.MessageId, $"{what}/{nth}");
                    await RuleEffects.SendAsync(connection, transaction, Name, entry, i, id, send.To, send.Kind, send.Body, cancellationToken);
                    break;
                case ViewEffect view:
                    await RuleEffects.ChangeViewAsync(connection, transaction, Name, entry.Position, view.View, view.Key, view.Mode, view.Value, cancellationToken, rebuild);
                    break;
                default:
                    throw new RuleFailure($"effect {i} is a {effects[i].GetType().Name}, not a SendEffect or ViewEffect");
            }
        }
    }
}
