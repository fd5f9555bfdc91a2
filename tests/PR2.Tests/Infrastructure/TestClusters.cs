using Microsoft.Extensions.Logging;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Configuration;
using Orleans.TestingHost;
using PR2.Client;
using PR2.Silo;

namespace PR2.Tests.Infrastructure;

/// <summary>Real Orleans clusters (in-process silos, real networking) configured exactly as the Silo host configures itself.</summary>
public static class TestClusters
{
    /// <summary>A cluster with the test framework's own membership; <paramref name="configureSilo"/> adds test-only services.</summary>
    public static async Task<InProcessTestCluster> StartAsync(IReadOnlyDictionary<string, string?> settings, short silos = 1, Action<ISiloBuilder>? configureSilo = null)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var builder = new InProcessTestClusterBuilder(silos);
        builder.Options.ConfigureFileLogging = false;
        // State in grain storage belongs to a service id: a cluster restarted on the same databases keeps it.
        if (settings.TryGetValue("Pr2:Silo:ServiceId", out var serviceId) && serviceId is not null)
        {
            builder.Options.ServiceId = serviceId;
        }

        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddPr2Silo(configuration);
            configureSilo?.Invoke(silo);
        });
        builder.ConfigureClient(client => client.AddPr2JournalStreams());
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }

    /// <summary>
    /// A cluster whose membership lives in PostgreSQL (ADO.NET clustering, our SQL): in <c>Pr2:Silo:Membership</c> when
    /// set, else the control shard's database. Silos in other processes can join it (the same cluster and service ids).
    /// </summary>
    public static async Task<TestCluster> StartWithAdoNetClusteringAsync(IReadOnlyDictionary<string, string?> settings, short silos)
    {
        var builder = new TestClusterBuilder(silos);
        builder.Options.UseTestClusterMembership = false;
        // Real sockets, so that silos in other processes can reach these.
        builder.Options.ConnectionTransport = ConnectionTransportType.TcpSocket;
        foreach (var (key, value) in settings)
        {
            builder.Properties[key] = value!;
        }

        builder.AddSiloBuilderConfigurator<AdoNetSiloConfigurator>();
        builder.AddClientBuilderConfigurator<AdoNetClientConfigurator>();
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }

    private sealed class AdoNetSiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            var configuration = siloBuilder.Configuration;
            siloBuilder.AddPr2Silo(configuration).UsePr2AdoNetClustering(configuration);
            if (Environment.GetEnvironmentVariable("PR2_TEST_LOG_DIR") is { Length: > 0 } dir)
            {
                Microsoft.Extensions.DependencyInjection.LoggingServiceCollectionExtensions.AddLogging(siloBuilder.Services, logging => Orleans.TestingHost.Logging.FileLoggerProviderExtensions
                    .AddFile(logging.AddFilter("Orleans.Streams", Microsoft.Extensions.Logging.LogLevel.Trace).AddFilter("PR2", Microsoft.Extensions.Logging.LogLevel.Debug), Path.Combine(dir, $"inproc-{Guid.NewGuid():N}.log")));
            }
        }
    }

    private sealed class AdoNetClientConfigurator : IClientBuilderConfigurator
    {
        public void Configure(IConfiguration configuration, IClientBuilder clientBuilder) =>
            clientBuilder.UseAdoNetClustering(options =>
                {
                    options.Invariant = "Npgsql";
                    options.ConnectionString = configuration["Pr2:Silo:Membership"] ?? configuration["Pr2:Topology:Shards:0:Replicas:0"];
                })
                // Silos come and go in these tests: learn of new gateways within seconds, not the default minute.
                .Configure<Orleans.Configuration.GatewayOptions>(options => options.GatewayListRefreshPeriod = TimeSpan.FromSeconds(2));
    }
}
