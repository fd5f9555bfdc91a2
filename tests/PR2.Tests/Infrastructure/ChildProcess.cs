using System.Collections.Concurrent;
using System.Diagnostics;

namespace PR2.Tests.Infrastructure;

/// <summary>A program run by a test (the silo, the pr2 tool) with its output captured line by line.</summary>
public sealed class ChildProcess : IDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();
    private readonly ConcurrentQueue<string> _error = new();

    private ChildProcess(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) { _output.Enqueue(e.Data); } };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { _error.Enqueue(e.Data); } };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public string Output => string.Join('\n', _output);

    public string Error => string.Join('\n', _error);

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>Starts <c>dotnet {assembly} {arguments}</c> from the test's output folder (or <paramref name="directory"/>).</summary>
    public static ChildProcess StartDotnet(string assembly, IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null, string? directory = null)
    {
        directory ??= AppContext.BaseDirectory;
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(directory, assembly));
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        return new ChildProcess(Process.Start(start)!);
    }

    /// <summary>Runs the pr2 tool to completion (bounded by a deadline) and returns its exit code and output.</summary>
    public static async Task<(int ExitCode, string Output, string Error)> RunPr2Async(string gateway, params string[] arguments)
    {
        using var tool = StartDotnet("pr2.dll", [.. arguments, "--gateway", gateway], directory: ToolDirectory);
        await tool.WaitForExitAsync(TimeSpan.FromSeconds(60));
        return (tool.ExitCode, tool.Output, tool.Error);
    }

    // The pr2 tool runs from its own build output, as installed: the test folder's copy would resolve
    // Microsoft.Extensions.* from the ASP.NET Core shared framework, which the tool does not use.
    private static string ToolDirectory => OutputDirectory("Client/Cli");

    /// <summary>The build output of a project of this repository (its folder, e.g. <c>samples/OrdersWeb</c>), in the tests' configuration.</summary>
    public static string OutputDirectory(string project)
    {
        var framework = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var configuration = framework.Parent!;
        var repository = configuration.Parent!.Parent!.Parent!.Parent!;
        return Path.Combine(repository.FullName, project, "bin", configuration.Name, framework.Name);
    }

    public Task WaitForOutputAsync(string text, TimeSpan deadline) =>
        Eventually.TrueAsync(() => Task.FromResult(_output.Any(line => line.Contains(text, StringComparison.Ordinal)) || _process.HasExited),
            deadline, $"output containing '{text}'");

    public async Task WaitForExitAsync(TimeSpan deadline)
    {
        using var timeout = new CancellationTokenSource(deadline);
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            Assert.Fail($"process did not exit within {deadline.TotalSeconds} s; output:\n{Output}\n{Error}");
        }
    }

    /// <summary>
    /// Sends SIGTERM, the stop request of Kubernetes and systemd (the silo handles it as it handles Ctrl-C). Not SIGINT:
    /// a command a non-interactive shell starts in the background inherits SIGINT as ignored, and so would the silo.
    /// </summary>
    public void Terminate()
    {
        using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    /// <summary>SIGKILL: no shutdown, no flush, its sockets closed by the kernel, as an OOM kill or a node loss.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        _process.Dispose();
    }
}
