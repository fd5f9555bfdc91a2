namespace PR2;

/// <summary>A projection of one shard (the records view, the object directory, a rule's agent) on each replica that keeps it.</summary>
/// <param name="Projection">Its name: <c>records</c>, <c>object-directory</c>, or a rule agent's (<c>rule:...</c>).</param>
/// <param name="Shard">The shard whose journal it folds.</param>
/// <param name="Rebuildable">Whether <c>pr2 projections rebuild</c> can rebuild it (the records view today).</param>
/// <param name="Replicas">One entry per replica it is kept for (one, replica 0, for a projection kept once per shard).</param>
[GenerateSerializer, Immutable, Alias("pr2.projection-status.v1")]
public sealed record ProjectionStatus(
    [property: Id(0)] string Projection,
    [property: Id(1)] int Shard,
    [property: Id(2)] bool Rebuildable,
    [property: Id(3)] IReadOnlyList<ProjectionReplicaStatus> Replicas)
{
    /// <summary>Whether replica <paramref name="replica"/> has swapped in the rebuild of generation <paramref name="generation"/> or a later one.</summary>
    public bool SwappedSince(int replica, long generation) =>
        Replicas.FirstOrDefault(r => r.Replica == replica) is { State: "done" } done && done.Generation >= generation;
}
