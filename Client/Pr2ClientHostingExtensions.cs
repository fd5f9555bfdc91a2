using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.Configuration;

namespace PR2.Client;

/// <summary>Adds an Orleans client and <see cref="Pr2Client"/> to a frontend's host, configured from <c>Pr2:Client</c>.</summary>
public static class Pr2ClientHostingExtensions
{
    public static IHostApplicationBuilder AddPr2Client(this IHostApplicationBuilder builder)
    {
        var options = builder.Configuration.GetSection(Pr2ClientOptions.SectionName).Get<Pr2ClientOptions>() ?? new Pr2ClientOptions();
        var gateways = options.EffectiveGateways.Select(ParseEndpoint).ToArray();
        const string tlsSection = $"{Pr2ClientOptions.SectionName}:{nameof(Pr2ClientOptions.Tls)}";
        var certificate = options.Tls.IsConfigured ? ClusterTls.LoadCertificate(options.Tls, tlsSection) : null;
        builder.UseOrleansClient(client =>
        {
            client.UseStaticClustering(gateways)
                .Configure<ClusterOptions>(cluster =>
                {
                    cluster.ClusterId = options.ClusterId;
                    cluster.ServiceId = options.ServiceId;
                });
            if (certificate is not null)
            {
                client.UseTls(certificate, tls => ClusterTls.Configure(tls, certificate, options.Tls, tlsSection));
            }
        });
        builder.Services.AddSingleton(services => new Pr2Client(services.GetRequiredService<IClusterClient>()));
        return builder;
    }

    /// <summary>Parses <c>host:port</c>; a host name is resolved now.</summary>
    public static IPEndPoint ParseEndpoint(string gateway)
    {
        var colon = gateway.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(gateway[(colon + 1)..], out var port) || port is < 1 or > 65535)
        {
            throw new FormatException($"{Pr2ClientOptions.SectionName}:{nameof(Pr2ClientOptions.Gateways)}: '{gateway}' is not of the form host:port");
        }

        var host = gateway[..colon];
        var address = IPAddress.TryParse(host, out var ip) ? ip : Dns.GetHostAddresses(host).FirstOrDefault()
            ?? throw new FormatException($"{Pr2ClientOptions.SectionName}:{nameof(Pr2ClientOptions.Gateways)}: host '{host}' does not resolve");
        return new IPEndPoint(address, port);
    }
}
