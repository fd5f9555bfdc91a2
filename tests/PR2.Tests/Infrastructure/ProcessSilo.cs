using System.Globalization;
using Microsoft.Extensions.Hosting;
using Orleans.Configuration;

namespace PR2.Tests.Infrastructure;

/// <summary>
/// The stock silo program (PR2.Silo.dll) run as its own OS process, configured only by environment variables as a
/// container would be, joined to a cluster through AdoNet membership; a test can kill it with SIGKILL.
/// </summary>
public sealed class ProcessSilo : IDisposable
{
    private readonly ChildProcess _process;

    private ProcessSilo(ChildProcess process, string name, Uri http, int siloPort)
    {
        _process = process;
        Name = name;
        Http = http;
        SiloPort = siloPort;
    }

    public string Name { get; }

    /// <summary>Its silo-to-silo port on loopback: its <c>SiloAddress</c> in the cluster's membership and directory.</summary>
    public int SiloPort { get; }

    /// <summary>Its HTTP API (health, metrics, status page) on loopback.</summary>
    public Uri Http { get; }

    public int ExitCode => _process.ExitCode;

    public bool HasExited => _process.HasExited;

    /// <summary>What the silo wrote (logging at Warning): fail-overs and failed commits explain a failed check.</summary>
    public string Output => _process.Output + "\n" + _process.Error;

    /// <summary>Starts a silo with <paramref name="settings"/> (configuration keys, as <c>Pr2:Topology:...</c>) and waits until it runs.</summary>
    public static async Task<ProcessSilo> StartAsync(string name, IReadOnlyDictionary<string, string?> settings)
    {
        var environment = settings.Where(p => p.Value is not null).ToDictionary(p => p.Key.Replace(":", "__", StringComparison.Ordinal), p => p.Value!);
        environment["Pr2__Silo__Clustering"] = "AdoNet";
        var siloPort = LoopbackPorts.Free();
        environment["Pr2__Silo__SiloPort"] = siloPort.ToString(CultureInfo.InvariantCulture);
        environment["Pr2__Silo__GatewayPort"] = LoopbackPorts.Free().ToString(CultureInfo.InvariantCulture);
        var httpPort = LoopbackPorts.Free();
        environment["Pr2__Http__Port"] = httpPort.ToString(CultureInfo.InvariantCulture);
        environment["Logging__LogLevel__Default"] = "Warning";
        if (Environment.GetEnvironmentVariable("PR2_TEST_LOG_DIR") is { Length: > 0 })
        {
            environment["Logging__LogLevel__Orleans.Streams"] = "Trace";
            environment["Logging__LogLevel__PR2"] = "Debug";
        }
        var process = ChildProcess.StartDotnet("PR2.Silo.dll", [], environment);
        await process.WaitForOutputAsync("PR2 silo is running", TimeSpan.FromSeconds(90));
        if (process.HasExited)
        {
            var output = process.Output + "\n" + process.Error;
            process.Dispose();
            Assert.Fail($"silo {name} exited at start: {output}");
        }

        return new ProcessSilo(process, name, new Uri($"http://127.0.0.1:{httpPort}"), siloPort);
    }

    /// <summary>A frontend's Orleans client, finding the gateways of cluster <c>pr2</c> in <paramref name="membership"/> as one in the cluster would.</summary>
    public static async Task<IHost> StartClientAsync(string membership)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.UseOrleansClient(client => client
            .UseAdoNetClustering(options =>
            {
                options.Invariant = "Npgsql";
                options.ConnectionString = membership;
            })
            .Configure<ClusterOptions>(cluster => (cluster.ClusterId, cluster.ServiceId) = ("pr2", "pr2"))
            .Configure<GatewayOptions>(gateways => gateways.GatewayListRefreshPeriod = TimeSpan.FromSeconds(2)));
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }

    /// <summary>SIGKILL, then wait for the process to be gone.</summary>
    public void Kill() => _process.Kill();

    /// <summary>SIGTERM, as Kubernetes stops a pod, then wait (up to <paramref name="grace"/>) for the graceful stop.</summary>
    public async Task TerminateAsync(TimeSpan grace)
    {
        _process.Terminate();
        await _process.WaitForExitAsync(grace);
    }

    public void Dispose() => _process.Dispose();
}
