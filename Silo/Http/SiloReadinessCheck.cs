using Microsoft.Extensions.Diagnostics.HealthChecks;
using PR2.Grains.Replication;
using PR2.Grains.Storage;

namespace PR2.Silo.Http;

/// <summary>
/// Readiness (<c>/ready</c>): the silo joined the cluster (active, so its schema pass ran), and the control shard has
/// a replica that answers. A business shard none of whose replicas answers makes the silo <c>Degraded</c> (still
/// ready: taking every silo out of service would cut the other shards off too) and is named in the answer.
/// </summary>
public sealed class SiloReadinessCheck(IClusterMembershipService membership, ILocalSiloDetails silo, ShardRegistry shards, SchemaMigrator schema) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var status = membership.CurrentSnapshot.GetSiloStatus(silo.SiloAddress);
        if (status != SiloStatus.Active)
        {
            return HealthCheckResult.Unhealthy($"silo {silo.Name} is {status}, not active in the cluster");
        }

        var codes = shards.ShardCodes;
        var health = await Task.WhenAll(codes.Select(code => ReplicaHealth.ProbeAsync(shards.Get(code).Readers, shards.Get(code).Removed)));
        var data = new Dictionary<string, object>();
        var unreachable = new List<int>();
        for (var i = 0; i < codes.Count; i++)
        {
            data[$"shard {codes[i]}"] = string.Join(" ", health[i].States);
            if (health[i].Vectors.All(v => v is null))
            {
                unreachable.Add(codes[i]);
            }
        }

        if (schema.Deferred.Count > 0)
        {
            data["schema pending"] = string.Join(", ", schema.Deferred.Select(r => $"shard {r.Shard} replica {r.Replica}"));
        }

        return unreachable.Contains(0) ? HealthCheckResult.Unhealthy("no replica of the control shard (0) answers", data: data)
            : unreachable.Count > 0 ? HealthCheckResult.Degraded($"no replica of shard {string.Join(", ", unreachable)} answers", data: data)
            : HealthCheckResult.Healthy($"silo {silo.Name} active; every shard has a replica that answers", data);
    }
}
