using System.Globalization;
using System.Text.Json.Nodes;
using PR2.Grains.Rules;

namespace PR2.Samples.SiloWithRule;

/// <summary>
/// A C# rule: every inserted order adds its total to its customer's document in the <c>customer_totals</c> view, and
/// an order over 1,000 sends an audit entry to shard 0. Each happens once per order, through fail-overs and replays.
/// </summary>
public sealed class OrderTotalsByCustomer : IRule
{
    public string Name => "customer-totals";

    public IReadOnlySet<MessageKind> Kinds { get; } = new HashSet<MessageKind> { MessageKind.Insert };

    public string TypePattern => "order";

    public Task<IReadOnlyList<RuleEffect>> HandleAsync(RuleInput input, CancellationToken cancellationToken)
    {
        var customer = input.Body["customer"]?.GetValue<string>() ?? throw new RuleFailure("an order without a customer");
        var total = input.Body["total"]?.GetValue<decimal>() ?? 0m;
        var effects = new List<RuleEffect> { new ViewEffect("customer_totals", customer, ViewMode.Add, new JsonObject { ["total"] = total, ["orders"] = 1 }) };
        if (total > 1000m)
        {
            var order = input.Entry.Actor;
            effects.Add(new SendEffect(new ActorRef(0, $"audit/order-{order.Shard}-{order.Key}"), MessageKind.Insert,
                new JsonObject { ["order"] = order.ActorId, ["total"] = total.ToString(CultureInfo.InvariantCulture) }));
        }

        return Task.FromResult<IReadOnlyList<RuleEffect>>(effects);
    }
}
