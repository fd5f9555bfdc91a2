namespace PR2.Grains;

/// <inheritdoc cref="IStreamReadersGrain"/>
public sealed class StreamReadersGrain : Grain, IStreamReadersGrain
{
    private static readonly TimeSpan ForgetAfter = TimeSpan.FromSeconds(30);
    private readonly Dictionary<string, (int[] Shards, DateTime At)> _reports = new(StringComparer.Ordinal);

    public Task<Dictionary<string, int[]>> Report(string silo, int[] shards)
    {
        _reports[silo] = (shards, DateTime.UtcNow);
        return Current();
    }

    public Task<Dictionary<string, int[]>> Current()
    {
        var now = DateTime.UtcNow;
        foreach (var gone in _reports.Where(r => now - r.Value.At > ForgetAfter).Select(r => r.Key).ToList())
        {
            _reports.Remove(gone);
        }

        return Task.FromResult(_reports.ToDictionary(r => r.Key, r => r.Value.Shards, StringComparer.Ordinal));
    }
}
