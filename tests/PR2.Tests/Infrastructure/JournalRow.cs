namespace PR2.Tests.Infrastructure;

/// <summary>What identifies and orders a journal entry on every replica: its actor and version, its origin and origin position.</summary>
public sealed record JournalRow(string Actor, long Version, Guid Origin, long OriginPosition);
