namespace PR2.Grains.Rules;

/// <summary>A rule's condition or action failed on one entry: the entry is parked with <see cref="Exception.Message"/>, or the rule halts.</summary>
public sealed class RuleFailure(string message) : Exception(message);
