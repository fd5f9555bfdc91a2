namespace PR2;

/// <summary>
/// Which silos have joined which shards (key 0), so that a shard's journal stream queue goes only to a silo that can read
/// it. Every silo reports its shards each directory round (5 s); a silo not heard from for 30 s is forgotten. Kept in
/// memory only: a new activation hears from every silo again within one round.
/// </summary>
public interface IStreamReadersGrain : IGrainWithIntegerKey
{
    /// <summary>Records that <paramref name="silo"/> has joined <paramref name="shards"/>; returns every silo's current report.</summary>
    Task<Dictionary<string, int[]>> Report(string silo, int[] shards);

    /// <summary>Every silo's current report (silo address to the shards it has joined), without one of its own.</summary>
    Task<Dictionary<string, int[]>> Current();
}
