using System.Net;
using Microsoft.Extensions.Configuration;
using Orleans.Configuration;
using Orleans.Dashboard;
using PR2.Client;
using PR2.Grains;
using Microsoft.Extensions.DependencyInjection;
using PR2.Grains.Configuration;
using PR2.Grains.Storage;
using PR2.Grains.Streaming;
using PR2.Silo.Storage;

namespace PR2.Silo;

/// <summary>How a PR2 silo is put together; shared by Program and the test clusters.</summary>
public static class SiloHostingExtensions
{
    /// <summary>
    /// The grains and their services (topology, schema migration, journal writers), C# rules from <c>Pr2:Silo:RuleAssemblies</c>
    /// and application grains from <c>Pr2:Silo:GrainAssemblies</c>.
    /// </summary>
    public static ISiloBuilder AddPr2Silo(this ISiloBuilder silo, IConfiguration configuration)
    {
        silo.Services.AddPr2Grains(configuration);
        // The shard journals as Orleans streams (provider "pr2"); subscriptions and grain state in the control shard.
        silo.AddPr2JournalStreams();
        silo.AddPr2GrainStorage(configuration);
        // Grain calls carry the caller's trace: an HTTP request, its grain calls and their SQL form one trace.
        silo.AddActivityPropagation();
        // The Orleans Dashboard's grains on every silo (its pages are served by the HTTP API at /dashboard); it profiles
        // grain calls only while someone looks at it.
        silo.AddDashboard();
        RuleAssemblies.Register(silo.Services, Options(configuration));
        GrainAssemblies.Register(silo, Options(configuration));
        return silo;
    }

    /// <summary>
    /// Grain state through the ADO.NET provider and our own SQL (sql/015): storage <see cref="GrainStorageName"/> for
    /// application grains and <c>PubSubStore</c> for stream subscriptions, each keyed by grain type as well as state name
    /// (<see cref="TypeScopedGrainStorage"/>). It lives with cluster membership: in <c>Pr2:Silo:Membership</c> when the
    /// silo uses AdoNet clustering with a membership database of its own, else in the control shard's first replica.
    /// </summary>
    public static ISiloBuilder AddPr2GrainStorage(this ISiloBuilder silo, IConfiguration configuration)
    {
        const string adoNet = "pr2-adonet";
        var options = Options(configuration);
        var membership = options.Clustering == "AdoNet" && !string.IsNullOrWhiteSpace(options.Membership) ? options.Membership : null;
        var before = silo.Services.Where(IsSiloLifecycleParticipant).ToHashSet();
        silo.AddAdoNetGrainStorage(adoNet, storage =>
        {
            storage.Invariant = "Npgsql";
            storage.ConnectionString = membership ?? ControlShardConnectionString(configuration);
        });
        // The provider starts on first use, not with the silo (DeferredStorageStart says why).
        foreach (var added in silo.Services.Where(IsSiloLifecycleParticipant).Where(d => !before.Contains(d)).ToList())
        {
            silo.Services.Remove(added);
        }

        silo.Services.AddSingleton(services => new DeferredStorageStart(services.GetRequiredKeyedService<Orleans.Storage.IGrainStorage>(adoNet)));
        foreach (var name in new[] { GrainStorageName, "PubSubStore" })
        {
            silo.Services.AddKeyedSingleton<Orleans.Storage.IGrainStorage>(name, (services, _) =>
                new TypeScopedGrainStorage(services.GetRequiredService<DeferredStorageStart>()));
        }

        return silo;

        static bool IsSiloLifecycleParticipant(ServiceDescriptor descriptor) => descriptor.ServiceType == typeof(ILifecycleParticipant<ISiloLifecycle>);
    }

    /// <summary>The grain storage for application grains: <c>[PersistentState("totals", SiloHostingExtensions.GrainStorageName)]</c>.</summary>
    public const string GrainStorageName = "pr2";

    /// <summary>
    /// Cluster membership through the ADO.NET provider and our own SQL: in <c>Pr2:Silo:Membership</c> when set (its
    /// tables are created at start), else in the control shard's first replica.
    /// </summary>
    public static ISiloBuilder UsePr2AdoNetClustering(this ISiloBuilder silo, IConfiguration configuration)
    {
        var membership = Options(configuration).Membership;
        if (!string.IsNullOrWhiteSpace(membership))
        {
            silo.Services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(services => new MembershipSchemaParticipant(
                membership, services.GetRequiredService<SchemaMigrator>()));
        }

        return silo.UseAdoNetClustering(options =>
        {
            options.Invariant = "Npgsql";
            options.ConnectionString = string.IsNullOrWhiteSpace(membership) ? ControlShardConnectionString(configuration) : membership;
        });
    }

    /// <summary>Clustering, endpoints, cluster identity and TLS from <see cref="SiloOptions"/>.</summary>
    public static ISiloBuilder UsePr2Clustering(this ISiloBuilder silo, IConfiguration configuration)
    {
        var options = Options(configuration);
        silo.UsePr2Tls(options);
        switch (options.Clustering)
        {
            case "Localhost":
                silo.UseLocalhostClustering(options.SiloPort, options.GatewayPort, serviceId: options.ServiceId, clusterId: options.ClusterId);
                break;
            case "AdoNet":
                silo.UsePr2AdoNetClustering(configuration)
                    .ConfigureEndpoints(AdvertisedAddress(options), options.SiloPort, options.GatewayPort, listenOnAnyHostAddress: false)
                    .Configure<ClusterOptions>(cluster =>
                    {
                        cluster.ClusterId = options.ClusterId;
                        cluster.ServiceId = options.ServiceId;
                    });
                if (KubernetesPod.IsCurrent)
                {
                    // In a pod: its name, IP and the cluster identity come from the pod (these options are applied
                    // after the ones above), and dead silos' pods are reconciled with membership.
                    silo.UseKubernetesHosting();
                }

                break;
            default:
                throw new InvalidOperationException($"{SiloOptions.SectionName}:{nameof(SiloOptions.Clustering)} must be Localhost or AdoNet, got '{options.Clustering}'");
        }

        return silo;
    }

    /// <summary>
    /// Mutual TLS on the silo-to-silo and gateway ports when <c>Pr2:Silo:Tls</c> names a certificate. Without it, a
    /// silo that others reach off loopback would let anyone who can reach its gateway past the HTTP API's per-shard
    /// authorization, so it refuses to start.
    /// </summary>
    public static ISiloBuilder UsePr2Tls(this ISiloBuilder silo, SiloOptions options)
    {
        const string section = $"{SiloOptions.SectionName}:{nameof(SiloOptions.Tls)}";
        if (!options.Tls.IsConfigured)
        {
            return options.Clustering == "Localhost" || IPAddress.IsLoopback(AdvertisedAddress(options))
                ? silo
                : throw new InvalidOperationException(
                    $"{SiloOptions.SectionName}:{nameof(SiloOptions.AdvertisedAddress)} {options.AdvertisedAddress} is not loopback, so the silo and gateway ports need TLS: set {section}:CertificatePath");
        }

        var certificate = ClusterTls.LoadCertificate(options.Tls, section);
        return silo.UseTls(certificate, tls => ClusterTls.Configure(tls, certificate, options.Tls, section));
    }

    /// <summary><c>Pr2:Silo:AdvertisedAddress</c> as an address: an IP address, or a host name resolved now (IPv4 first).</summary>
    public static IPAddress AdvertisedAddress(SiloOptions options)
    {
        if (IPAddress.TryParse(options.AdvertisedAddress, out var address))
        {
            return address;
        }

        var addresses = Dns.GetHostAddresses(options.AdvertisedAddress);
        return addresses.OrderBy(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 0 : 1).FirstOrDefault()
            ?? throw new InvalidOperationException($"{SiloOptions.SectionName}:{nameof(SiloOptions.AdvertisedAddress)}: host '{options.AdvertisedAddress}' does not resolve");
    }

    private static SiloOptions Options(IConfiguration configuration) =>
        configuration.GetSection(SiloOptions.SectionName).Get<SiloOptions>() ?? new SiloOptions();

    private static string ControlShardConnectionString(IConfiguration configuration) =>
        configuration[$"{TopologyOptions.SectionName}:{nameof(TopologyOptions.Shards)}:0:{nameof(ShardTopology.Replicas)}:0"]
        ?? throw new InvalidOperationException($"{TopologyOptions.SectionName}:{nameof(TopologyOptions.Shards)}:0:{nameof(ShardTopology.Replicas)}:0 is required for AdoNet clustering");
}
