using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using PR2.Silo;
using PR2.Silo.Http;

namespace PR2.Tests.Infrastructure;

/// <summary>A real silo hosting the HTTP API on a real Kestrel server on loopback, put together as the Silo program does.</summary>
public sealed class HttpSilo : IAsyncDisposable
{
    private readonly WebApplication _app;

    private HttpSilo(WebApplication app, Uri address, int gatewayPort, string clusterId)
    {
        _app = app;
        Address = address;
        GatewayPort = gatewayPort;
        ClusterId = clusterId;
    }

    /// <summary>The silo's Orleans gateway port on loopback: where outside clients connect.</summary>
    public int GatewayPort { get; }

    /// <summary>The cluster (and service) id outside clients must name.</summary>
    public string ClusterId { get; }

    /// <summary>Where the API listens (a free loopback port).</summary>
    public Uri Address { get; }

    /// <summary>The silo's own grain factory: for calls that bypass the HTTP API and the .NET client's checks.</summary>
    public IGrainFactory Grains => _app.Services.GetRequiredService<IGrainFactory>();

    /// <summary>The silo's co-hosted cluster client, as the HTTP API uses it.</summary>
    public IClusterClient ClusterClient => _app.Services.GetRequiredService<IClusterClient>();

    /// <summary>An HTTP client for the API; <paramref name="apiKey"/> goes in X-Api-Key.</summary>
    public HttpClient Client(string? apiKey = null)
    {
        var client = new HttpClient { BaseAddress = Address, Timeout = TimeSpan.FromSeconds(30) };
        if (apiKey is not null)
        {
            client.DefaultRequestHeaders.Add(ApiKeyAuthenticationHandler.HeaderName, apiKey);
        }

        return client;
    }

    public static async Task<HttpSilo> StartAsync(IReadOnlyDictionary<string, string?> settings)
    {
        var builder = WebApplication.CreateBuilder();
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Pr2:Http:Port"] = "0" });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        var cluster = $"http-{Guid.NewGuid():N}";
        var gatewayPort = LoopbackPorts.Free();
        builder.UseOrleans(silo => silo.AddPr2Silo(builder.Configuration)
            .UseLocalhostClustering(LoopbackPorts.Free(), gatewayPort, serviceId: cluster, clusterId: cluster));
        var options = builder.AddPr2HttpApi();
        var app = builder.Build();
        app.UsePr2HttpApi(options);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return new HttpSilo(app, new Uri(address), gatewayPort, cluster);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
