namespace PR2.Tests.Infrastructure;

/// <summary>Test classes in this collection share one PostgreSQL server (each with its own databases).</summary>
[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresFixture>
{
    public const string Name = "postgres";
}
