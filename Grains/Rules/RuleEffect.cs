namespace PR2.Grains.Rules;

/// <summary>One thing a C# rule does about an entry: <see cref="SendEffect"/> or <see cref="ViewEffect"/>.</summary>
public abstract record RuleEffect;
