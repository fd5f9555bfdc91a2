using System.Reflection;

namespace PR2.Silo;

/// <summary>What <c>PR2.Silo --help</c> and <c>--version</c> print: the silo takes no commands, only configuration.</summary>
public static class SiloUsage
{
    public static string Version =>
        typeof(SiloUsage).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "unknown";

    public const string Text = """
        pr2 silo: runs one silo of a PR2 cluster (Orleans silo, gateway and HTTP/JSON API) until Ctrl-C or SIGTERM.

        Usage: PR2.Silo [--Key=Value ...]      (or: dotnet run --project Silo -- [--Key=Value ...])

        Configuration comes from appsettings.json, environment variables (Pr2__Topology__Shards__1__Replicas__0=...)
        and --Key=Value arguments. With no Pr2:Topology, it starts a local PostgreSQL server for you (the embedded
        default; data in Pr2:Embedded:DataDirectory). Main keys:
          Pr2:Topology:Shards:<code>:Replicas:<i>   PostgreSQL connection string of a shard's replica
          Pr2:Silo:Clustering, Pr2:Silo:Membership  Localhost or AdoNet membership, and its own database
          Pr2:Silo:SiloPort, GatewayPort, AdvertisedAddress, Pr2:Silo:Tls:*
          Pr2:Http:Address, Pr2:Http:Port, Pr2:Http:ApiKeys:*, Pr2:Http:Jwt:*
        Every key: docs/configuration.md. Endpoints: /v1 (API), /docs (explorer), / (status), /metrics, /healthz, /ready.

          --help       this text
          --version    the silo's version
        """;
}
