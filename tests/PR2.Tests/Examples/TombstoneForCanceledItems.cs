using System.Text.Json.Nodes;
using PR2.Grains.Rules;

namespace PR2.Tests.Examples;

/// <summary>
/// A C# rule for the fault suite: each canceled item leaves a tombstone actor in shard 0
/// (<c>tomb/item-{shard}-{key}</c>) and is counted in the source shard's <c>item_cancels</c> view.
/// </summary>
public sealed class TombstoneForCanceledItems : IRule
{
    public string Name => "tombstones";

    public IReadOnlySet<MessageKind> Kinds { get; } = new HashSet<MessageKind> { MessageKind.Cancel };

    public string TypePattern => "item";

    public Task<IReadOnlyList<RuleEffect>> HandleAsync(RuleInput input, CancellationToken cancellationToken)
    {
        var item = input.Entry.Actor;
        return Task.FromResult<IReadOnlyList<RuleEffect>>(
        [
            new SendEffect(new ActorRef(0, $"tomb/item-{item.Shard}-{item.Key}"), MessageKind.Insert, new JsonObject { ["item"] = item.ActorId }),
            new ViewEffect("item_cancels", "all", ViewMode.Add, new JsonObject { ["n"] = 1 }),
        ]);
    }
}
