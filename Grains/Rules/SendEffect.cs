using System.Text.Json.Nodes;

namespace PR2.Grains.Rules;

/// <summary>Send a message to an actor (through the outbox, exactly once in effect).</summary>
public sealed record SendEffect(ActorRef To, MessageKind Kind, JsonObject Body) : RuleEffect;
