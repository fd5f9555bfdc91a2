namespace PR2.Bench;

/// <summary>Collects per-message latencies from many writers and reports percentiles.</summary>
internal sealed class LatencyRecorder
{
    private readonly List<double>[] _perWriter;

    public LatencyRecorder(int writers) => _perWriter = [.. Enumerable.Range(0, writers).Select(_ => new List<double>(4096))];

    /// <summary>Only writer <paramref name="writer"/> may call this for its own slot: no locking needed.</summary>
    public void Record(int writer, double milliseconds) => _perWriter[writer].Add(milliseconds);

    public (long Count, double P50, double P95, double P99) Summarize()
    {
        var all = _perWriter.SelectMany(l => l).Order().ToArray();
        if (all.Length == 0)
        {
            return (0, double.NaN, double.NaN, double.NaN);
        }

        double At(double q) => all[Math.Min(all.Length - 1, (int)Math.Floor(q * all.Length))];
        return (all.Length, At(0.50), At(0.95), At(0.99));
    }
}
