namespace PR2;

/// <summary>
/// Which silos have joined which shards (key 0), so that a shard's journal stream queue goes only to a silo that can read
/// it. Every silo reports its shards each directory round (5 s); a silo not heard from for 30 s is forgotten. Kept in
/// memory only: a new activation hears from every silo again within one round.
/// </summary>
public interface IStreamReadersGrain : IGrainWithIntegerKey
{
    /// <summary>
    /// Records that <paramref name="silo"/> has joined <paramref name="shards"/> and released <paramref name="released"/>
    /// (removed shards it will never serve again); returns every silo's current report of the shards joined.
    /// </summary>
    Task<Dictionary<string, int[]>> Report(string silo, int[] shards, int[] released);

    /// <summary>Per silo heard from lately, the removed shards it has released (a removal ends once every active silo lists it).</summary>
    Task<Dictionary<string, int[]>> Released();
}
