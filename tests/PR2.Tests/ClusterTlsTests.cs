using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using PR2.Client;
using PR2.Silo;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// The cluster's ports admit only holders of the cluster's certificates: a silo with <c>Pr2:Silo:Tls</c> serves a
/// client that presents a certificate of the cluster's authority, and no client without one or with a stranger's; a
/// silo reachable off loopback refuses to start without TLS. Real silo and client hosts, put together as the silo
/// program and <c>AddPr2Client</c> do, over loopback.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ClusterTlsTests(PostgresFixture postgres) : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("pr2-tls-").FullName;

    [Fact]
    public async Task Only_clients_with_a_certificate_of_the_clusters_authority_reach_the_gateway()
    {
        var authority = CreateAuthority("PR2 test cluster authority");
        var stranger = CreateAuthority("someone else");
        var (siloCertificate, authorityPath) = (Issue(authority, "silo"), Save(authority, "authority.cer"));
        var topology = postgres.CreateTopology("cluster_tls", 0, 1);
        var (siloPort, gatewayPort) = (FreePort(), FreePort());
        var settings = new Dictionary<string, string?>(topology.Settings)
        {
            ["Pr2:Silo:SiloPort"] = siloPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Pr2:Silo:GatewayPort"] = gatewayPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Pr2:Silo:ClusterId"] = "tls",
            ["Pr2:Silo:ServiceId"] = "tls",
            ["Pr2:Silo:Tls:CertificatePath"] = siloCertificate,
            ["Pr2:Silo:Tls:AuthorityPath"] = authorityPath,
        };
        using var silo = await StartSiloAsync(settings);

        // A client of the cluster's authority writes and reads.
        using (var trusted = await StartClientAsync(gatewayPort, Issue(authority, "frontend"), authorityPath))
        {
            var client = trusted.Services.GetRequiredService<Pr2Client>();
            var ack = await client.SendAsync(1, "order/tls", MessageKind.Insert, "{}");
            Assert.Equal(1, ack.Version);
        }

        // No certificate, or one from another authority: the gateway does not let it in.
        var plain = await Record.ExceptionAsync(async () =>
        {
            using var host = await StartClientAsync(gatewayPort, certificate: null, authority: null, timeoutSeconds: 5);
            await host.Services.GetRequiredService<Pr2Client>().SendAsync(1, "order/plain", MessageKind.Insert, "{}");
        });
        Assert.True(IsRefusedConnection(plain), $"a client without a certificate: {plain}");
        var foreign = await Record.ExceptionAsync(async () =>
        {
            using var host = await StartClientAsync(gatewayPort, Issue(stranger, "intruder"), Save(stranger, "stranger.cer"), timeoutSeconds: 5);
            await host.Services.GetRequiredService<Pr2Client>().SendAsync(1, "order/foreign", MessageKind.Insert, "{}");
        });
        Assert.True(IsRefusedConnection(foreign), $"a client with a stranger's certificate: {foreign}");
        Assert.Equal(1, await topology.JournalCountAsync(1));
    }

    [Fact]
    public void A_silo_advertised_off_loopback_without_tls_refuses_to_start_naming_the_setting()
    {
        var options = new SiloOptions { Clustering = "AdoNet", AdvertisedAddress = "10.1.2.3" };
        var error = Assert.Throws<InvalidOperationException>(() => new TestSiloBuilder().UsePr2Tls(options));
        Assert.Contains("Pr2:Silo:Tls:CertificatePath", error.Message, StringComparison.Ordinal);

        // On loopback (or single-machine clustering) it needs none.
        new TestSiloBuilder().UsePr2Tls(new SiloOptions { Clustering = "AdoNet" });
        new TestSiloBuilder().UsePr2Tls(new SiloOptions { AdvertisedAddress = "10.1.2.3" });
    }

    // The client never got a connection through: it gave up connecting (its start timed out) or was turned away.
    private static bool IsRefusedConnection(Exception? e) => e is OperationCanceledException or TimeoutException or Orleans.Runtime.OrleansException;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static async Task<IHost> StartSiloAsync(Dictionary<string, string?> settings)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.UseOrleans(silo => silo.AddPr2Silo(builder.Configuration).UsePr2Clustering(builder.Configuration));
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }

    private static async Task<IHost> StartClientAsync(int gatewayPort, string? certificate, string? authority, int timeoutSeconds = 30)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Pr2:Client:Gateways:0"] = $"127.0.0.1:{gatewayPort}",
            ["Pr2:Client:ClusterId"] = "tls",
            ["Pr2:Client:ServiceId"] = "tls",
            ["Pr2:Client:Tls:CertificatePath"] = certificate,
            ["Pr2:Client:Tls:AuthorityPath"] = authority,
        });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.AddPr2Client();
        var host = builder.Build();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(timeoutSeconds));
        await host.StartAsync(timeout.Token);
        return host;
    }

    private static X509Certificate2 CreateAuthority(string name)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
    }

    // A certificate for one member of the cluster (silo or client), issued by the authority, saved with its key.
    private string Issue(X509Certificate2 authority, string name)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        using var issued = request.Create(authority, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(20), RandomNumberGenerator.GetBytes(8));
        using var withKey = issued.CopyWithPrivateKey(key);
        var path = Path.Combine(_directory, $"{name}.pfx");
        File.WriteAllBytes(path, withKey.Export(X509ContentType.Pkcs12));
        return path;
    }

    private string Save(X509Certificate2 certificate, string name)
    {
        var path = Path.Combine(_directory, name);
        File.WriteAllBytes(path, certificate.Export(X509ContentType.Cert));
        return path;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    // Only what UsePr2Tls touches before it fails: a silo builder with no silo behind it.
    private sealed class TestSiloBuilder : ISiloBuilder
    {
        public IServiceCollection Services { get; } = new ServiceCollection();

        public IConfiguration Configuration { get; } = new ConfigurationBuilder().Build();
    }
}
