using System.Diagnostics;
using Npgsql;

namespace PR2.Bench;

/// <summary>
/// Once a second during a long open-loop run: how long the server spent in WAL fsyncs (pg_stat_wal, with
/// track_wal_io_timing on) and how long this process paused for garbage collection. Printed beside the run's
/// slowest seconds, they tell a disk stall or a load-generator pause from a stall in PR2.
/// </summary>
internal sealed class SecondSamples
{
    private readonly List<(long Ticks, double WalSyncMs, long WalSyncs, double ClientGcMs)> _samples = [];

    public static async Task<SecondSamples> RunAsync(NpgsqlDataSource server, CancellationToken stop)
    {
        var samples = new SecondSamples();
        await using var command = server.CreateCommand("select wal_sync, wal_sync_time from pg_stat_wal");
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        do
        {
            await using var reader = await command.ExecuteReaderAsync(CancellationToken.None);
            await reader.ReadAsync(CancellationToken.None);
            samples._samples.Add((Stopwatch.GetTimestamp(), reader.GetDouble(1), reader.GetInt64(0), GC.GetTotalPauseDuration().TotalMilliseconds));
        }
        while (await WaitAsync(timer, stop));

        return samples;
    }

    /// <summary>What the samples around <paramref name="ticks"/> saw in the second before and the second after it.</summary>
    public string Around(long ticks)
    {
        var after = _samples.FindIndex(s => s.Ticks >= ticks);
        if (after <= 0 || after + 1 >= _samples.Count)
        {
            return "no samples";
        }

        var (from, to) = (_samples[after - 1], _samples[after + 1]);
        return $"server WAL fsync {to.WalSyncMs - from.WalSyncMs:N0} ms in {to.WalSyncs - from.WalSyncs:N0} syncs, bench GC pauses {to.ClientGcMs - from.ClientGcMs:N0} ms (2 s around it)";
    }

    /// <summary>The same figures for a typical (median) two seconds of the run, to compare the slowest seconds with.</summary>
    public string Typical()
    {
        if (_samples.Count < 3)
        {
            return "no samples";
        }

        var windows = Enumerable.Range(0, _samples.Count - 2)
            .Select(i => (Fsync: _samples[i + 2].WalSyncMs - _samples[i].WalSyncMs, Syncs: _samples[i + 2].WalSyncs - _samples[i].WalSyncs))
            .OrderBy(w => w.Fsync)
            .ToList();
        var median = windows[windows.Count / 2];
        return $"server WAL fsync {median.Fsync:N0} ms in {median.Syncs:N0} syncs";
    }

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken stop)
    {
        try
        {
            return await timer.WaitForNextTickAsync(stop);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
