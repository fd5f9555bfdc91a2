namespace PR2;

/// <summary>Reads views kept by rules in one shard (key = shard code), from its primary. Stateless: any silo answers.</summary>
public interface IViewGrain : IGrainWithIntegerKey
{
    /// <summary>Documents of <paramref name="view"/> whose key starts with <paramref name="keyPrefix"/>, by key, at most <paramref name="limit"/> (1..1000).</summary>
    Task<IReadOnlyList<ViewDocument>> Query(string view, string? keyPrefix, int limit);
}
