namespace PR2.Tests.Infrastructure;

/// <summary>Test classes that share one cluster (see <see cref="SharedClusterFixture"/>).</summary>
[CollectionDefinition(Name)]
public sealed class SharedClusterCollection : ICollectionFixture<SharedClusterFixture>
{
    public const string Name = "shared cluster";
}
