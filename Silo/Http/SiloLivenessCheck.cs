using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace PR2.Silo.Http;

/// <summary>
/// Liveness (<c>/healthz</c>): the process answers and its silo has not been declared dead by the cluster. No database
/// or grain I/O, so a slow server never gets a healthy silo restarted.
/// </summary>
public sealed class SiloLivenessCheck(IClusterMembershipService membership, ILocalSiloDetails silo) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var status = membership.CurrentSnapshot.GetSiloStatus(silo.SiloAddress);
        return Task.FromResult(status == SiloStatus.Dead
            ? HealthCheckResult.Unhealthy("the cluster declared this silo dead; it must restart to rejoin")
            : HealthCheckResult.Healthy($"silo {silo.Name}: {status}"));
    }
}
