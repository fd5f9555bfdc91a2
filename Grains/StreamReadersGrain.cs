namespace PR2.Grains;

/// <inheritdoc cref="IStreamReadersGrain"/>
public sealed class StreamReadersGrain : Grain, IStreamReadersGrain
{
    private static readonly TimeSpan ForgetAfter = TimeSpan.FromSeconds(30);
    private readonly Dictionary<string, (int[] Shards, int[] Released, DateTime At)> _reports = new(StringComparer.Ordinal);

    public Task<Dictionary<string, int[]>> Report(string silo, int[] shards, int[] released)
    {
        _reports[silo] = (shards, released, DateTime.UtcNow);
        return Task.FromResult(Current().ToDictionary(r => r.Key, r => r.Value.Shards, StringComparer.Ordinal));
    }

    public Task<Dictionary<string, int[]>> Released() =>
        Task.FromResult(Current().ToDictionary(r => r.Key, r => r.Value.Released, StringComparer.Ordinal));

    // The reports heard from within ForgetAfter (older ones are of silos gone, or cut off).
    private Dictionary<string, (int[] Shards, int[] Released, DateTime At)> Current()
    {
        var now = DateTime.UtcNow;
        foreach (var gone in _reports.Where(r => now - r.Value.At > ForgetAfter).Select(r => r.Key).ToList())
        {
            _reports.Remove(gone);
        }

        return _reports;
    }
}
