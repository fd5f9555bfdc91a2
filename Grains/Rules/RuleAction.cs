namespace PR2.Grains.Rules;

/// <summary>One action of a rule; <see cref="Index"/> is its place in the rule's <c>do</c> list.</summary>
public abstract record RuleAction(int Index);
