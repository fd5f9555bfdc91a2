using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace PR2.Tests.Infrastructure;

/// <summary>
/// A real headless Chromium (Debian's package) with one page open, driven over the DevTools protocol: the test
/// evaluates JavaScript in the live page, so it sees what a person would after the page's own scripts ran.
/// </summary>
public sealed class HeadlessChromium : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ClientWebSocket _socket = new();
    private readonly string _profile;
    private int _nextId;

    private HeadlessChromium(Process process, string profile)
    {
        _process = process;
        _profile = profile;
    }

    public static async Task<HeadlessChromium> OpenAsync(Uri page)
    {
        var port = LoopbackPorts.Free();
        var profile = Path.Combine(Path.GetTempPath(), $"pr2-chromium-{Guid.NewGuid():N}");
        var start = new ProcessStartInfo("chromium")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[]
                 {
                     "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                     $"--remote-debugging-port={port}", "--remote-allow-origins=*", $"--user-data-dir={profile}", page.ToString(),
                 })
        {
            start.ArgumentList.Add(argument);
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("chromium did not start");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var browser = new HeadlessChromium(process, profile);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        string? target = null;
        await Eventually.TrueAsync(async () =>
        {
            try
            {
                var targets = JsonNode.Parse(await http.GetStringAsync($"http://127.0.0.1:{port}/json"))!.AsArray();
                target = targets.FirstOrDefault(t => (string?)t!["type"] == "page")?["webSocketDebuggerUrl"]?.GetValue<string>();
                return target is not null;
            }
            catch (HttpRequestException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(30), "chromium's DevTools endpoint with a page");
        await browser._socket.ConnectAsync(new Uri(target!), CancellationToken.None);
        return browser;
    }

    /// <summary>Evaluates <paramref name="expression"/> in the page and returns its value as JSON text.</summary>
    public async Task<string> EvaluateAsync(string expression)
    {
        var id = Interlocked.Increment(ref _nextId);
        var request = new JsonObject
        {
            ["id"] = id,
            ["method"] = "Runtime.evaluate",
            ["params"] = new JsonObject { ["expression"] = expression, ["returnByValue"] = true },
        };
        await _socket.SendAsync(Encoding.UTF8.GetBytes(request.ToJsonString()), WebSocketMessageType.Text, true, CancellationToken.None);
        while (true)
        {
            var reply = JsonNode.Parse(await ReceiveAsync())!;
            if ((int?)reply["id"] == id)
            {
                return reply["result"]?["result"]?["value"]?.ToJsonString() ?? "null";
            }
        }
    }

    private async Task<string> ReceiveAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var buffer = new byte[64 * 1024];
        using var message = new MemoryStream();
        WebSocketReceiveResult result;
        do
        {
            result = await _socket.ReceiveAsync(buffer, timeout.Token);
            message.Write(buffer, 0, result.Count);
        }
        while (!result.EndOfMessage);
        return Encoding.UTF8.GetString(message.ToArray());
    }

    public async ValueTask DisposeAsync()
    {
        _socket.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        try
        {
            Directory.Delete(_profile, recursive: true);
        }
        catch (IOException)
        {
            // A leftover profile directory is harmless.
        }
    }
}
