using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace PR2.Silo.Embedded;

/// <summary>
/// A PostgreSQL server run from the installed binaries in a data directory of its own, listening on
/// loopback only. Used by the embedded default and by the tests. PostgreSQL refuses to run as root, so
/// when this process is root the server runs as the <c>postgres</c> user (through <c>runuser</c>).
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    private const string ServiceUser = "postgres";
    private const string PortFileName = "pr2.port";
    private const string OwnerFileName = "pr2.owner";

    private readonly PostgresBinaries _binaries;
    private readonly bool _stopOnDispose;
    private readonly IReadOnlyDictionary<string, string> _settings;

    private PostgresServer(PostgresBinaries binaries, string dataDirectory, int port, bool stopOnDispose, IReadOnlyDictionary<string, string> settings)
    {
        _binaries = binaries;
        _settings = settings;
        DataDirectory = dataDirectory;
        Port = port;
        _stopOnDispose = stopOnDispose;
    }

    public string DataDirectory { get; }

    public int Port { get; }

    private static bool IsRoot => Environment.UserName == "root";

    /// <summary>
    /// Initializes <paramref name="dataDirectory"/> if it is empty and starts the server on a free loopback
    /// port (the port used last time when it is still free), waiting until it accepts connections.
    /// <paramref name="settings"/> are extra server settings (<c>-c name=value</c>), e.g. shared_buffers.
    /// <paramref name="port"/>, when given, is the port to listen on (a server replacing one that was lost, say).
    /// </summary>
    public static async Task<PostgresServer> StartAsync(string dataDirectory, PostgresBinaries binaries, bool stopOnDispose = true,
        IReadOnlyDictionary<string, string>? settings = null, CancellationToken cancellationToken = default, int? port = null)
    {
        Directory.CreateDirectory(dataDirectory);
        if (IsRoot)
        {
            await RunAsync("chown", ["-R", $"{ServiceUser}:{ServiceUser}", dataDirectory], asServiceUser: false, cancellationToken);
        }

        if (!File.Exists(Path.Combine(dataDirectory, "PG_VERSION")))
        {
            await RunAsync(binaries.InitDb, ["-D", dataDirectory, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"], IsRoot, cancellationToken);
        }
        else if (await RunForExitCodeAsync(binaries.PgCtl, ["status", "-D", dataDirectory], IsRoot, cancellationToken) == 0)
        {
            await StopLeftoverAsync(dataDirectory, binaries, cancellationToken);
        }

        var server = new PostgresServer(binaries, dataDirectory, port ?? ChoosePort(dataDirectory), stopOnDispose, settings ?? new Dictionary<string, string>());
        await server.StartAgainAsync(cancellationToken);
        File.WriteAllText(Path.Combine(dataDirectory, OwnerFileName), Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        return server;
    }

    // A server already running on this data directory. Left by a process that was killed (SIGKILL, OOM: the server
    // outlives it, being a daemon of its own): stop it cleanly, so it starts again with this process's settings. Still
    // used by a live process of the same program: refuse, rather than stop a database under it.
    private static async Task StopLeftoverAsync(string dataDirectory, PostgresBinaries binaries, CancellationToken cancellationToken)
    {
        var ownerFile = Path.Combine(dataDirectory, OwnerFileName);
        if (File.Exists(ownerFile) && int.TryParse(File.ReadAllText(ownerFile), CultureInfo.InvariantCulture, out var owner) && IsLiveProcessOfThisProgram(owner))
        {
            throw new InvalidOperationException(
                $"the PostgreSQL server in '{dataDirectory}' is in use by process {owner}; stop that process first, or give this one a data directory of its own");
        }

        await RunAsync(binaries.PgCtl, ["stop", "-D", dataDirectory, "-m", "fast", "-w", "-t", "60"], IsRoot, cancellationToken);
    }

    private static bool IsLiveProcessOfThisProgram(int pid)
    {
        if (pid == Environment.ProcessId)
        {
            return true;
        }

        try
        {
            var program = System.Reflection.Assembly.GetEntryAssembly()?.GetName().Name ?? "";
            var commandLine = File.ReadAllText($"/proc/{pid}/cmdline");
            return program.Length > 0 && commandLine.Contains(program, StringComparison.Ordinal);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false; // gone
        }
    }

    /// <summary>Connection string for <paramref name="database"/> on this server.</summary>
    public string ConnectionString(string database) =>
        new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1",
            Port = Port,
            Username = "postgres",
            Database = database,
        }.ConnectionString;

    /// <summary>Starts the server (again) on its port; returns when it accepts connections.</summary>
    public async Task StartAgainAsync(CancellationToken cancellationToken = default)
    {
        var options = string.Join(' ',
            $"-p {Port}",
            "-c listen_addresses=127.0.0.1",
            $"-c unix_socket_directories={DataDirectory}",
            "-c max_connections=400",
            "-c fsync=on",
            "-c synchronous_commit=on",
            string.Join(' ', _settings.Select(setting => $"-c {setting.Key}={setting.Value}")));
        await RunAsync(_binaries.PgCtl,
            ["start", "-D", DataDirectory, "-l", Path.Combine(DataDirectory, "server.log"), "-w", "-t", "60", "-o", options],
            IsRoot, cancellationToken);
        File.WriteAllText(Path.Combine(DataDirectory, PortFileName), Port.ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// Starts a hot standby of this server in <paramref name="dataDirectory"/>: a base backup taken from it, then
    /// following it by streaming replication (read-only until <see cref="PromoteAsync"/>), on a port of its own.
    /// </summary>
    public async Task<PostgresServer> StartStandbyAsync(string dataDirectory, CancellationToken cancellationToken = default)
    {
        // PostgreSQL refuses a data directory others may read; initdb sets this itself, pg_basebackup keeps what it finds.
        Directory.CreateDirectory(dataDirectory);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(dataDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        if (IsRoot)
        {
            await RunAsync("chown", ["-R", $"{ServiceUser}:{ServiceUser}", dataDirectory], asServiceUser: false, cancellationToken);
        }

        await RunAsync(_binaries.PgBaseBackup,
            ["-h", "127.0.0.1", "-p", Port.ToString(CultureInfo.InvariantCulture), "-U", ServiceUser, "-D", dataDirectory, "-R", "-X", "stream", "-c", "fast"],
            IsRoot, cancellationToken);
        File.Delete(Path.Combine(dataDirectory, PortFileName)); // the primary's port, taken: the standby picks its own
        return await StartAsync(dataDirectory, _binaries, _stopOnDispose, _settings, cancellationToken);
    }

    /// <summary>Promotes a standby to a primary that takes writes (what an HA manager does when the primary is lost).</summary>
    public Task PromoteAsync(CancellationToken cancellationToken = default) =>
        RunAsync(_binaries.PgCtl, ["promote", "-D", DataDirectory, "-w", "-t", "60"], IsRoot, cancellationToken);

    /// <summary>Stops the server: <c>fast</c> (clean) or <c>immediate</c> (as if the machine lost power: no checkpoint).</summary>
    public Task StopAsync(string mode = "fast", CancellationToken cancellationToken = default) =>
        RunAsync(_binaries.PgCtl, ["stop", "-D", DataDirectory, "-m", mode, "-w", "-t", "60"], IsRoot, cancellationToken);

    /// <summary>Freezes the server and all its processes (SIGSTOP), as a stalled machine would; <see cref="ResumeAsync"/> thaws it.</summary>
    public Task PauseAsync() => SignalAllAsync("-STOP");

    /// <summary>Thaws a paused server (SIGCONT).</summary>
    public Task ResumeAsync() => SignalAllAsync("-CONT");

    public async ValueTask DisposeAsync()
    {
        if (_stopOnDispose && File.Exists(Path.Combine(DataDirectory, "postmaster.pid")))
        {
            await StopAsync("fast");
        }
    }

    private async Task SignalAllAsync(string signal)
    {
        // The postmaster first: once it is stopped it forks no new backend, so the children listed after it are all of
        // them. (Listed before, a connection opened in between got a backend that kept running through a "pause".)
        var postmaster = File.ReadLines(Path.Combine(DataDirectory, "postmaster.pid")).First().Trim();
        await RunAsync("kill", [signal, postmaster], asServiceUser: false, CancellationToken.None);
        foreach (var pid in ChildrenOf(postmaster))
        {
            try
            {
                await RunAsync("kill", [signal, pid], asServiceUser: false, CancellationToken.None);
            }
            catch (InvalidOperationException)
            {
                // Gone already: children may exit between listing and signalling.
            }
        }
    }

    private static List<string> ChildrenOf(string parent)
    {
        var children = new List<string>();
        foreach (var dir in Directory.EnumerateDirectories("/proc").Where(d => Path.GetFileName(d).All(char.IsAsciiDigit)))
        {
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                if (stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1] == parent)
                {
                    children.Add(Path.GetFileName(dir));
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The process ended meanwhile.
            }
        }

        return children;
    }

    private static int ChoosePort(string dataDirectory)
    {
        var portFile = Path.Combine(dataDirectory, PortFileName);
        if (File.Exists(portFile) && int.TryParse(File.ReadAllText(portFile), CultureInfo.InvariantCulture, out var previous) && IsFree(previous))
        {
            return previous;
        }

        // Below the kernel's ephemeral range: a port in it can be taken as the local end of any outbound
        // connection while the server is down, and a restart after a crash could then not bind it.
        var below = EphemeralRangeStart();
        for (var attempt = 0; attempt < 200; attempt++)
        {
            var port = Random.Shared.Next(Math.Max(1024, below - 12_000), below);
            if (IsFree(port))
            {
                return port;
            }
        }

        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static int EphemeralRangeStart()
    {
        const string RangeFile = "/proc/sys/net/ipv4/ip_local_port_range";
        return File.Exists(RangeFile) && int.TryParse(File.ReadAllText(RangeFile).Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries)[0], CultureInfo.InvariantCulture, out var start)
            ? start
            : 32768;
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static async Task RunAsync(string program, IReadOnlyList<string> arguments, bool asServiceUser, CancellationToken cancellationToken)
    {
        var (exitCode, written) = await RunCapturedAsync(program, arguments, asServiceUser, cancellationToken);
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"{Path.GetFileName(program)} {string.Join(' ', arguments)} failed with exit code {exitCode}: {written}");
        }
    }

    private static async Task<int> RunForExitCodeAsync(string program, IReadOnlyList<string> arguments, bool asServiceUser, CancellationToken cancellationToken) =>
        (await RunCapturedAsync(program, arguments, asServiceUser, cancellationToken)).ExitCode;

    // The exit code, and what the command wrote when it failed.
    private static async Task<(int ExitCode, string Written)> RunCapturedAsync(string program, IReadOnlyList<string> arguments, bool asServiceUser,
        CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(asServiceUser ? "runuser" : program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (asServiceUser)
        {
            foreach (var argument in (string[])["-u", ServiceUser, "--", program])
            {
                start.ArgumentList.Add(argument);
            }
        }

        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {program}");
        // pg_ctl start leaves the server holding our pipes; read to end only what the command itself wrote.
        var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var error = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        return process.ExitCode == 0 ? (0, "") : (process.ExitCode, await error + await output);
    }
}
