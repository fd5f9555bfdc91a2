using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.Configuration;

namespace PR2.Client;

/// <summary>Adds an Orleans client and PR2 to a frontend's host.</summary>
public static class Pr2ClientHostingExtensions
{
    /// <summary>
    /// The Orleans client, configured from <c>Pr2:Client</c> and then <paramref name="configure"/>; <see cref="Pr2Client"/>
    /// and <see cref="IPr2Client"/> as singletons, and <see cref="IPr2Session"/> scoped (in ASP.NET Core, one per request).
    /// </summary>
    public static IHostApplicationBuilder AddPr2Client(this IHostApplicationBuilder builder, Action<Pr2ClientOptions>? configure = null)
    {
        var options = builder.Configuration.GetSection(Pr2ClientOptions.SectionName).Get<Pr2ClientOptions>() ?? new Pr2ClientOptions();
        configure?.Invoke(options);
        const string tlsSection = $"{Pr2ClientOptions.SectionName}:{nameof(Pr2ClientOptions.Tls)}";
        var certificate = options.Tls.IsConfigured ? ClusterTls.LoadCertificate(options.Tls, tlsSection) : null;
        builder.UseOrleansClient(client =>
        {
            if (string.IsNullOrEmpty(options.Membership))
            {
                client.UseStaticClustering(options.EffectiveGateways.Select(ParseEndpoint).ToArray());
            }
            else
            {
                client.UseAdoNetClustering(adoNet =>
                {
                    adoNet.Invariant = "Npgsql";
                    adoNet.ConnectionString = options.Membership;
                });
            }

            client.Configure<ClusterOptions>(cluster =>
            {
                cluster.ClusterId = options.ClusterId;
                cluster.ServiceId = options.ServiceId;
            });
            if (certificate is not null)
            {
                client.UseTls(certificate, tls => ClusterTls.Configure(tls, certificate, options.Tls, tlsSection));
            }

            client.AddPr2JournalStreams();
        });
        builder.Services.AddSingleton(services => new Pr2Client(services.GetRequiredService<IClusterClient>(), options.Retry));
        builder.Services.AddSingleton<IPr2Client>(services => services.GetRequiredService<Pr2Client>());
        builder.Services.AddScoped(services => services.GetRequiredService<IPr2Client>().OpenSession());
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
