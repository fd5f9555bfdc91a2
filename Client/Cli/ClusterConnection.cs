using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Configuration;

namespace PR2.Client.Cli;

/// <summary>An Orleans client connected to one gateway, for the lifetime of one command.</summary>
public sealed class ClusterConnection : IAsyncDisposable
{
    /// <summary>Environment variable naming the gateway, <c>host:port</c>.</summary>
    public const string GatewayVariable = "PR2_GATEWAY";

    /// <summary>Environment variable naming the cluster id (must match the silos' <c>Pr2:Silo:ClusterId</c>).</summary>
    public const string ClusterIdVariable = "PR2_CLUSTER_ID";

    /// <summary>The embedded default's gateway.</summary>
    public const string DefaultGateway = "127.0.0.1:30000";

    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(10);

    private readonly IHost _host;

    private ClusterConnection(IHost host, string gateway)
    {
        _host = host;
        Gateway = gateway;
        Client = host.Services.GetRequiredService<Pr2Client>();
    }

    public Pr2Client Client { get; }

    public string Gateway { get; }

    /// <summary>Connects to <paramref name="gateway"/> (or <c>PR2_GATEWAY</c>, or the embedded default).</summary>
    public static async Task<ClusterConnection> OpenAsync(string? gateway, CancellationToken cancellationToken)
    {
        gateway ??= Environment.GetEnvironmentVariable(GatewayVariable) ?? DefaultGateway;
        var clusterId = Environment.GetEnvironmentVariable(ClusterIdVariable) ?? "pr2";

        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        const string tls = $"{Pr2ClientOptions.SectionName}:{nameof(Pr2ClientOptions.Tls)}";
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            [$"{Pr2ClientOptions.SectionName}:{nameof(Pr2ClientOptions.Gateways)}:0"] = gateway,
            [$"{Pr2ClientOptions.SectionName}:{nameof(Pr2ClientOptions.ClusterId)}"] = clusterId,
            [$"{Pr2ClientOptions.SectionName}:{nameof(Pr2ClientOptions.ServiceId)}"] = clusterId,
            // A cluster with TLS on its ports: this tool's certificate, and the authority that issued the cluster's.
            [$"{tls}:{nameof(ClusterTlsOptions.CertificatePath)}"] = Environment.GetEnvironmentVariable("PR2_TLS_CERTIFICATE"),
            [$"{tls}:{nameof(ClusterTlsOptions.KeyPath)}"] = Environment.GetEnvironmentVariable("PR2_TLS_KEY"),
            [$"{tls}:{nameof(ClusterTlsOptions.Password)}"] = Environment.GetEnvironmentVariable("PR2_TLS_PASSWORD"),
            [$"{tls}:{nameof(ClusterTlsOptions.AuthorityPath)}"] = Environment.GetEnvironmentVariable("PR2_TLS_AUTHORITY"),
        });
        try
        {
            builder.AddPr2Client();
        }
        catch (Exception e) when (e is FormatException or System.Net.Sockets.SocketException or InvalidOperationException)
        {
            throw new ClusterUnreachableException($"gateway '{gateway}': {e.Message}", e);
        }

        var host = builder.Build();
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(ConnectTimeout);
            await host.StartAsync(timeout.Token);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            host.Dispose();
            var reason = e is OperationCanceledException ? $"no answer within {ConnectTimeout.TotalSeconds:0} s" : e.GetBaseException().Message;
            throw new ClusterUnreachableException(
                $"cannot reach a PR2 silo at {gateway} ({reason}); start one with 'dotnet run --project Silo' or give --gateway / {GatewayVariable}", e);
        }

        return new ClusterConnection(host, gateway);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _host.StopAsync(TimeSpan.FromSeconds(5));
        }
        finally
        {
            _host.Dispose();
        }
    }
}
