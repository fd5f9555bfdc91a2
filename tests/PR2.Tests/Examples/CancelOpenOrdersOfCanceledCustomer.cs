using System.Text.Json.Nodes;
using PR2.Grains.Rules;

namespace PR2.Tests.Examples;

/// <summary>
/// Example 2 of docs/rules.md, a rule written in C#: canceling a customer cancels that customer's open orders
/// in its shard. It needs a query (the customer's live orders), which the expression language cannot say.
/// </summary>
public sealed class CancelOpenOrdersOfCanceledCustomer : IRule
{
    public string Name => "cancel-customer-orders";

    public IReadOnlySet<MessageKind> Kinds { get; } = new HashSet<MessageKind> { MessageKind.Cancel };

    public string TypePattern => "customer";

    public async Task<IReadOnlyList<RuleEffect>> HandleAsync(RuleInput input, CancellationToken cancellationToken)
    {
        var customer = input.Entry.Actor.Key;
        var orders = await input.FindLiveRecordsAsync("order", new JsonObject { ["customer"] = customer }, cancellationToken);
        return [.. orders.Select(order => new SendEffect(order.Actor, MessageKind.Cancel, new JsonObject { ["reason"] = $"customer {customer} was canceled" }))];
    }
}
