using System.Text.Json.Nodes;

namespace PR2.Silo.Http;

/// <summary>A rule as the HTTP API shows it: its definition as JSON, and where it starts as stamps.</summary>
/// <param name="Name">The rule's name.</param>
/// <param name="Version">Version of its directory record: every add, replace, pause or resume makes a new one.</param>
/// <param name="Paused">A paused rule does not move; resumed, it goes on from where it stopped.</param>
/// <param name="Definition">The definition (docs/rules.md).</param>
/// <param name="StartAfter">Per followed shard, the stamp (<c>counter@shard</c>) it acts after; null: from the beginning.</param>
/// <param name="Generation">Chosen when the rule was added; the ids of the messages it sends carry it.</param>
public sealed record RuleView(string Name, long Version, bool Paused, JsonNode? Definition, IReadOnlyDictionary<string, string?> StartAfter, string Generation)
{
    public static RuleView From(RuleInfo rule) =>
        new(rule.Name, rule.Version, rule.Paused, JsonNode.Parse(rule.Definition),
            rule.StartAfter.OrderBy(p => p.Key).ToDictionary(
                p => p.Key.ToString(System.Globalization.CultureInfo.InvariantCulture),
                p => p.Value > 0 ? new LamportStamp(p.Value, p.Key).ToString() : null),
            rule.Generation);
}
