using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace PR2.Bench;

/// <summary>A PR2 silo run as its own process (so its CPU and memory can be read apart from the client's).</summary>
internal sealed class SiloProcess : IAsyncDisposable
{
    private readonly Process _process;

    private SiloProcess(Process process, int gatewayPort)
    {
        _process = process;
        GatewayPort = gatewayPort;
    }

    public int Pid => _process.Id;

    public int GatewayPort { get; }

    /// <summary>
    /// Starts a silo serving <paramref name="shards"/> (per shard, its replicas' connection strings in order), with
    /// <paramref name="connections"/> as <c>Pr2:Connections:</c> keys (for replicas added at runtime).
    /// </summary>
    public static async Task<SiloProcess> StartAsync(IReadOnlyDictionary<int, string[]> shards, IReadOnlyDictionary<string, string>? connections = null,
        IReadOnlyDictionary<string, string>? settings = null)
    {
        var gatewayPort = FreePort();
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = AppContext.BaseDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "PR2.Silo.dll"));
        foreach (var (shard, replicas) in shards)
        {
            for (var i = 0; i < replicas.Length; i++)
            {
                start.Environment[$"Pr2__Topology__Shards__{shard}__Replicas__{i}"] = replicas[i];
            }
        }

        foreach (var (name, connectionString) in connections ?? new Dictionary<string, string>())
        {
            start.Environment[$"Pr2__Connections__{name}"] = connectionString;
        }

        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
        {
            start.Environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        }

        start.Environment["Pr2__Silo__SiloPort"] = FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["Pr2__Silo__GatewayPort"] = gatewayPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["Pr2__Http__Port"] = "0";
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        var process = Process.Start(start)!;
        var ready = new TaskCompletionSource();
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data?.Contains("PR2 silo is running", StringComparison.Ordinal) == true)
            {
                ready.TrySetResult();
            }
            else if (e.Data is not null && ready.Task.IsCompleted)
            {
                // Logging is at Warning: what the silo says during a run (fail-overs, failed commits) explains a stall.
                Console.Error.WriteLine($"silo: {e.Data}");
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                Console.Error.WriteLine($"silo: {e.Data}");
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        await ready.Task.WaitAsync(TimeSpan.FromSeconds(90));
        return new SiloProcess(process, gatewayPort);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            using (var interrupt = Process.Start("kill", ["-INT", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await interrupt.WaitForExitAsync();
            }

            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            try
            {
                await _process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
            }
        }

        _process.Dispose();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
