using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using PR2.Client;

namespace PR2.Tests;

/// <summary>
/// The client connects to exactly the gateways it is given. A default that stayed in the list beside a configured
/// gateway sent every client (the pr2 tool, the benchmark) after a gateway that was not there, and silos then tried
/// to forward the client's system calls to it.
/// </summary>
public sealed class ClientConfigurationTests
{
    [Fact]
    public void Configured_gateways_replace_the_default()
    {
        var gateways = GatewaysFor(new Dictionary<string, string?>
        {
            ["Pr2:Client:Gateways:0"] = "127.0.0.1:23456",
            ["Pr2:Client:Gateways:1"] = "127.0.0.1:23457",
        });

        Assert.Equal([23456, 23457], gateways.Select(uri => uri.Port));
    }

    [Fact]
    public void Without_configuration_the_client_uses_the_default_gateway()
    {
        var gateway = Assert.Single(GatewaysFor([]));

        Assert.Equal(("127.0.0.1", 30000), (gateway.Host, gateway.Port));
    }

    private static List<Uri> GatewaysFor(Dictionary<string, string?> settings)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(settings);
        builder.AddPr2Client();
        using var host = builder.Build();
        return host.Services.GetRequiredService<IOptions<StaticGatewayListProviderOptions>>().Value.Gateways;
    }
}
