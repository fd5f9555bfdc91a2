using System.Diagnostics;

namespace PR2.Tests;

/// <summary>
/// The packages as a team gets them: <c>dotnet pack</c> of the solution gives the client library, the wire types, the
/// grains, the silo hosting package and the pr2 tool, each with license and readme; the tool installs from them and
/// answers <c>--help</c> as <c>pr2</c>.
/// </summary>
public sealed class PackageTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "pr2-tests", "pack-" + Guid.NewGuid().ToString("N")[..8]);

    [Fact]
    public async Task The_solution_packs_and_the_pr2_tool_installs_from_its_package_and_answers_help()
    {
        var repository = new DirectoryInfo(AppContext.BaseDirectory);
        while (!File.Exists(Path.Combine(repository.FullName, "PR2.Orleans.sln")))
        {
            repository = repository.Parent!;
        }

        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;
        var packages = Path.Combine(_directory, "nupkg");
        var pack = await RunAsync("dotnet", ["pack", Path.Combine(repository.FullName, "PR2.Orleans.sln"), "-c", configuration, "--no-build", "-o", packages]);
        Assert.True(pack.ExitCode == 0, pack.Output);
        var packed = Directory.GetFiles(packages, "*.nupkg").Select(Path.GetFileName).Order(StringComparer.OrdinalIgnoreCase).ToList();
        Assert.Equal(
            ["pr2.0.1.0-alpha.1.nupkg", "PR2.Client.0.1.0-alpha.1.nupkg", "PR2.Grains.0.1.0-alpha.1.nupkg", "PR2.Grains.Interfaces.0.1.0-alpha.1.nupkg", "PR2.Silo.Hosting.0.1.0-alpha.1.nupkg"],
            packed);

        var tools = Path.Combine(_directory, "tools");
        var install = await RunAsync("dotnet", ["tool", "install", "pr2", "--tool-path", tools, "--add-source", packages, "--version", "0.1.0-alpha.1"]);
        Assert.True(install.ExitCode == 0, install.Output);
        var help = await RunAsync(Path.Combine(tools, "pr2"), ["--help"]);
        Assert.True(help.ExitCode == 0, help.Output);
        using (var client = System.IO.Compression.ZipFile.OpenRead(Path.Combine(packages, "PR2.Client.0.1.0-alpha.1.nupkg")))
        {
            // What a package page shows: the readme, the license, and the API's XML documentation.
            Assert.Contains(client.Entries, e => e.FullName == "README.md");
            Assert.Contains(client.Entries, e => e.FullName == "lib/net10.0/PR2.Client.xml");
            Assert.Contains("<license type=\"expression\">MIT</license>", new StreamReader(client.Entries.Single(e => e.Name == "PR2.Client.nuspec").Open()).ReadToEnd(), StringComparison.Ordinal);
        }

        Assert.Contains("pr2 [command] [options]", help.Output, StringComparison.Ordinal);
        Assert.Contains("send", help.Output, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp directory is harmless.
        }
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string program, string[] arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        // An installed tool's launcher finds the runtime through DOTNET_ROOT when dotnet is not in a standard place.
        start.Environment["DOTNET_ROOT"] = Environment.GetEnvironmentVariable("DOTNET_ROOT") ?? Path.GetDirectoryName(Environment.ProcessPath)!;

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        await process.WaitForExitAsync(deadline.Token);
        return (process.ExitCode, $"{program} {string.Join(' ', arguments)}: {await output}{await error}");
    }
}
