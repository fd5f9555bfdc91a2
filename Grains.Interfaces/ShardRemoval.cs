namespace PR2;

/// <summary>
/// Where a shard's removal stands, as its directory record keeps it. States, in order: <c>sealing</c> (every replica is
/// retired, so no writer commits there again, and the replicas are made equal), <c>draining</c> (the journal is final:
/// agents, rules and the outbox finish what it holds), <c>releasing</c> (every silo drops the shard) and <c>removed</c>.
/// </summary>
/// <param name="State">One of <see cref="States"/>.</param>
/// <param name="Since">When the removal entered <paramref name="State"/>.</param>
/// <param name="SealedHeads">Per replica index, its journal head once sealed (from <c>draining</c> on); none before.</param>
[GenerateSerializer, Immutable, Alias("pr2.shard-removal.v1")]
public sealed record ShardRemoval(
    [property: Id(0)] string State,
    [property: Id(1)] DateTimeOffset Since,
    [property: Id(2)] IReadOnlyDictionary<int, long>? SealedHeads = null)
{
    public const string Sealing = "sealing";
    public const string Draining = "draining";
    public const string Releasing = "releasing";
    public const string Removed = "removed";

    /// <summary>The states a removal goes through, in order.</summary>
    public static IReadOnlyList<string> States => StateOrder;

    private static readonly string[] StateOrder = [Sealing, Draining, Releasing, Removed];

    /// <summary>Whether the journal is final: the seal completed, so what no replica holds will never be written.</summary>
    public bool IsSealed => Order(State) >= Order(Draining);

    /// <summary>The state's place in <see cref="States"/> (-1 for one this version does not know).</summary>
    public static int Order(string state) => Array.IndexOf(StateOrder, state);
}
