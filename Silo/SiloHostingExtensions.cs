using System.Net;
using Microsoft.Extensions.Configuration;
using Orleans.Configuration;
using PR2.Grains;
using PR2.Grains.Configuration;

namespace PR2.Silo;

/// <summary>How a PR2 silo is put together; shared by Program and the test clusters.</summary>
public static class SiloHostingExtensions
{
    /// <summary>The grains and their services (topology, schema migration, journal writers).</summary>
    public static ISiloBuilder AddPr2Silo(this ISiloBuilder silo, IConfiguration configuration)
    {
        silo.Services.AddPr2Grains(configuration);
        return silo;
    }

    /// <summary>Cluster membership in the control shard's primary database, through the ADO.NET provider and our own SQL.</summary>
    public static ISiloBuilder UsePr2AdoNetClustering(this ISiloBuilder silo, IConfiguration configuration) =>
        silo.UseAdoNetClustering(options =>
        {
            options.Invariant = "Npgsql";
            options.ConnectionString = ControlShardConnectionString(configuration);
        });

    /// <summary>Clustering, endpoints and cluster identity from <see cref="SiloOptions"/>.</summary>
    public static ISiloBuilder UsePr2Clustering(this ISiloBuilder silo, IConfiguration configuration)
    {
        var options = configuration.GetSection(SiloOptions.SectionName).Get<SiloOptions>() ?? new SiloOptions();
        switch (options.Clustering)
        {
            case "Localhost":
                silo.UseLocalhostClustering(options.SiloPort, options.GatewayPort, serviceId: options.ServiceId, clusterId: options.ClusterId);
                break;
            case "AdoNet":
                silo.UsePr2AdoNetClustering(configuration)
                    .ConfigureEndpoints(IPAddress.Parse(options.AdvertisedAddress), options.SiloPort, options.GatewayPort, listenOnAnyHostAddress: false)
                    .Configure<ClusterOptions>(cluster =>
                    {
                        cluster.ClusterId = options.ClusterId;
                        cluster.ServiceId = options.ServiceId;
                    });
                break;
            default:
                throw new InvalidOperationException($"{SiloOptions.SectionName}:{nameof(SiloOptions.Clustering)} must be Localhost or AdoNet, got '{options.Clustering}'");
        }

        return silo;
    }

    private static string ControlShardConnectionString(IConfiguration configuration) =>
        configuration[$"{TopologyOptions.SectionName}:{nameof(TopologyOptions.Shards)}:0:{nameof(ShardTopology.Replicas)}:0"]
        ?? throw new InvalidOperationException($"{TopologyOptions.SectionName}:{nameof(TopologyOptions.Shards)}:0:{nameof(ShardTopology.Replicas)}:0 is required for AdoNet clustering");
}
