using Microsoft.Extensions.Hosting;
using PR2.Grains;

namespace PR2.Silo;

/// <summary>
/// Takes the cluster's status (agent marks, replica lag) every 15 s for the lag gauges, so a scrape reads a snapshot
/// instead of querying every database. A snapshot older than a minute is not reported.
/// </summary>
public sealed class StatusSampler(IGrainFactory grains) : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan Stale = TimeSpan.FromMinutes(1);
    private volatile ClusterStatus? _latest;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        Pr2Metrics.ObserveStatus(() => _latest is { } status && DateTimeOffset.UtcNow - status.ReadAt < Stale ? status : null);
        using var timer = new PeriodicTimer(Interval);
        do
        {
            try
            {
                _latest = await grains.GetGrain<IStatusGrain>(0).GetStatus().WaitAsync(Interval, stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                // The silo is still joining, or the cluster did not answer: the gauges go quiet until the next sample.
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
