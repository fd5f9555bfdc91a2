using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// As a user would: start the silo on the embedded default as a child process, drive the pr2 tool,
/// stop the silo (SIGTERM, handled as Ctrl-C is), start it again, and find the data still there.
/// </summary>
public sealed class EndToEndTests : IDisposable
{
    private readonly string _dataDirectory = Path.Combine(Path.GetTempPath(), "pr2-tests", "e2e-" + Guid.NewGuid().ToString("N")[..8]);
    private readonly int _siloPort = LoopbackPorts.Free();
    private readonly int _gatewayPort = LoopbackPorts.Free();
    private readonly int _httpPort = LoopbackPorts.Free();
    private ChildProcess? _silo;

    private string Gateway => $"127.0.0.1:{_gatewayPort}";

    [Fact]
    public async Task The_cli_walkthrough_works_against_the_embedded_default_and_data_survives_a_restart()
    {
        await StartSiloAsync();

        var insert = await Pr2Async("send", "1", "order/42", "insert", """{"total": 10, "customer": "c-7"}""");
        Assert.Contains("accepted: 1:order/42 version 1", insert.Output, StringComparison.Ordinal);
        await Pr2Async("send", "1", "order/42", "modify", """{"total": 12}""", "--expect-version", "1");
        var get = await Pr2Async("get", "1", "order/42");
        Assert.Contains("status   live", get.Output, StringComparison.Ordinal);
        Assert.Contains("version  2", get.Output, StringComparison.Ordinal);
        Assert.Contains("\"total\": 12", get.Output, StringComparison.Ordinal);
        await Pr2Async("send", "1", "order/42", "cancel");

        // A refusal: one line on stderr, a non-zero exit code, nothing on stdout.
        var refused = await ChildProcess.RunPr2Async(Gateway, "send", "1", "order/42", "modify", """{"total": 1}""");
        Assert.Equal(1, refused.ExitCode);
        Assert.Equal("error: RecordCanceled: 1:order/42 was canceled at version 3; a canceled record stays canceled", refused.Error.Trim());
        Assert.Equal("", refused.Output.Trim());

        var journal = await Pr2Async("journal", "1");
        Assert.Equal(4, journal.Output.Trim().Split('\n').Length); // header + 3 entries
        Assert.Contains("cancel", journal.Output, StringComparison.Ordinal);
        var tail = (await Pr2Async("journal", "1", "--tail", "2")).Output.Trim().Split('\n');
        Assert.Equal(3, tail.Length); // header + the last 2
        Assert.StartsWith("2 ", tail[1], StringComparison.Ordinal);

        // The actor as printed ("1:order/42") is accepted back as one argument.
        Assert.Contains("version  3", (await Pr2Async("get", "1:order/42")).Output, StringComparison.Ordinal);

        await Eventually.TrueAsync(async () =>
        {
            var status = JsonDocument.Parse((await Pr2Async("status", "--json")).Output).RootElement;
            var shard1 = status.GetProperty("shards").EnumerateArray().Single(s => s.GetProperty("shard").GetInt32() == 1);
            return shard1.GetProperty("head").GetInt64() == 3
                && shard1.GetProperty("agents").EnumerateArray().All(a => a.GetProperty("lag").GetInt64() == 0);
        }, TimeSpan.FromSeconds(30), "status shows shard 1 at head 3 with its agents caught up");

        var directory = await Pr2Async("directory", "--type", "order");
        Assert.Contains("order/42", directory.Output, StringComparison.Ordinal);
        Assert.Contains("canceled", directory.Output, StringComparison.Ordinal);

        // What a shard is, recorded in the directory and shown back.
        var set = await Pr2Async("shards", "set", "1", "--name", "Acme Ltd", "--owner", "team-billing", "--label", "region=eu-west");
        Assert.Contains("shard 1: name Acme Ltd, owner team-billing, labels region=eu-west", set.Output, StringComparison.Ordinal);
        Assert.Contains("Acme Ltd", (await Pr2Async("shards", "list")).Output, StringComparison.Ordinal);
        var described = (await Pr2Async("shards", "describe", "1")).Output;
        Assert.Contains("shard 1: Acme Ltd", described, StringComparison.Ordinal);
        Assert.Contains("labels   region=eu-west", described, StringComparison.Ordinal);
        var shardJson = JsonDocument.Parse((await Pr2Async("shards", "describe", "1", "--json")).Output).RootElement;
        Assert.Equal(3, shardJson.GetProperty("status").GetProperty("head").GetInt64());
        Assert.Equal("team-billing", shardJson.GetProperty("shard").GetProperty("owner").GetString());
        var badLabel = await ChildProcess.RunPr2Async(Gateway, "shards", "set", "1", "--label", "region");
        Assert.Equal(2, badLabel.ExitCode);
        Assert.Contains("give key=value", badLabel.Error, StringComparison.Ordinal);
        var unknownShard = await ChildProcess.RunPr2Async(Gateway, "shards", "describe", "9");
        Assert.Equal(1, unknownShard.ExitCode);
        Assert.Contains("shard 9 is not in the directory", unknownShard.Error, StringComparison.Ordinal);

        // Moving a primary: to the replica it is on, a no-op; to one the shard does not have, bad input (exit code 2) naming the range.
        Assert.Contains("shard 1: primary is replica 0", (await Pr2Async("replicas", "promote", "1", "0")).Output, StringComparison.Ordinal);
        var noReplica = await ChildProcess.RunPr2Async(Gateway, "replicas", "promote", "1", "3");
        Assert.Equal(2, noReplica.ExitCode);
        Assert.Contains("shard 1 has replicas 0 to 0; there is no replica 3", noReplica.Error, StringComparison.Ordinal);

        // The records view rebuilt from the command line: a progress bar on stderr, then every replica done; what cannot be
        // rebuilt yet is bad usage (exit code 2), and the list shows every projection of the shard.
        var rebuilt = await Pr2Async("projections", "rebuild", "1", "records");
        Assert.Contains("shard 1: records rebuilt and swapped in on 1 replicas", rebuilt.Output, StringComparison.Ordinal);
        Assert.Contains("records of shard 1 [", rebuilt.Error, StringComparison.Ordinal);
        Assert.Contains("swapped in", (await Pr2Async("projections", "status", "1", "records")).Output, StringComparison.Ordinal);
        var notYet = await ChildProcess.RunPr2Async(Gateway, "projections", "rebuild", "1", "object-directory");
        Assert.Equal(2, notYet.ExitCode);
        Assert.Contains("through shard 0", notYet.Error, StringComparison.Ordinal);
        var projections = await Pr2Async("projections", "list", "1");
        Assert.Contains("object-directory", projections.Output, StringComparison.Ordinal);
        Assert.Contains("#1 swapped in", projections.Output, StringComparison.Ordinal);

        // Adding a replica names its connection by a configuration key every silo has; one this silo lacks is bad usage.
        var unset = await ChildProcess.RunPr2Async(Gateway, "replicas", "add", "1", "Pr2:Connections:nowhere");
        Assert.Equal(2, unset.ExitCode);
        Assert.Contains("configuration key Pr2:Connections:nowhere is not set on this silo", unset.Error, StringComparison.Ordinal);

        // A backup of the only replica of shard 1, with progress on stderr (a log here: lines, not a bar); restoring it over
        // the live replica is refused, as bad usage, without --replace and (it is the primary) with it.
        var backupDirectory = Path.Combine(_dataDirectory, "backup-1");
        var backup = await Pr2Async("backup", "1", backupDirectory);
        Assert.Contains("shard 1: replica 0 backed up at position", backup.Output, StringComparison.Ordinal);
        Assert.Contains("backup of shard 1 [", backup.Error, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(backupDirectory, "manifest.json")));
        var overLive = await ChildProcess.RunPr2Async(Gateway, "restore", "1", "0", backupDirectory);
        Assert.Equal(2, overLive.ExitCode);
        Assert.Contains("exists", overLive.Error, StringComparison.Ordinal);
        var overPrimary = await ChildProcess.RunPr2Async(Gateway, "restore", "1", "0", backupDirectory, "--replace");
        Assert.Equal(2, overPrimary.ExitCode);
        Assert.Contains("is the shard's primary", overPrimary.Error, StringComparison.Ordinal);

        // The rules walk-through of the README: a YAML rule added with the tool writes an audit entry in shard 0.
        var ruleFile = Path.Combine(_dataDirectory, "big-orders.yaml");
        await File.WriteAllTextAsync(ruleFile, """
            name: big-orders
            on: {type: order, kinds: [insert]}
            when: "[body.total] > 1000"
            do:
              - send: {shard: 0, actor: "audit/order-{entry.shard}-{entry.key}", kind: insert, body: {order: "{entry.actor}", total: "{body.total}"}}
            """);
        Assert.Contains("rule big-orders saved (version 1)", (await Pr2Async("rules", "add", ruleFile)).Output, StringComparison.Ordinal);
        await Pr2Async("send", "1", "order/77", "insert", """{"total": 2500}""");
        await Eventually.TrueAsync(async () => (await ChildProcess.RunPr2Async(Gateway, "get", "0", "audit/order-1-77")).ExitCode == 0,
            TimeSpan.FromSeconds(30), "the rule wrote audit/order-1-77 in shard 0");
        Assert.Contains("\"total\": 2500", (await Pr2Async("get", "0", "audit/order-1-77")).Output, StringComparison.Ordinal);
        Assert.Contains("big-orders", (await Pr2Async("rules", "list")).Output, StringComparison.Ordinal);
        Assert.Contains("version  1", (await Pr2Async("rules", "show", "big-orders")).Output, StringComparison.Ordinal);
        Assert.Contains("rule big-orders paused (version 2)", (await Pr2Async("rules", "pause", "big-orders")).Output, StringComparison.Ordinal);
        Assert.Contains("rule big-orders active (version 3)", (await Pr2Async("rules", "resume", "big-orders")).Output, StringComparison.Ordinal);

        // A bad rule: one line naming the place and the reason, exit code 2.
        var badFile = Path.Combine(_dataDirectory, "bad.json");
        await File.WriteAllTextAsync(badFile, """{"name": "bad", "on": {"type": "order"}, "do": [{"send": {"shard": 1, "actor": "x/{entry.nope}", "kind": "insert"}}]}""");
        var bad = await ChildProcess.RunPr2Async(Gateway, "rules", "add", badFile);
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("$.do[0].send.actor: {entry.nope}", bad.Error, StringComparison.Ordinal);

        // An atomic batch from an NDJSON file: one acknowledgement, the same again when sent again; a refused batch names
        // each refused message on stderr, exits 1 and writes nothing.
        var batchFile = Path.Combine(_dataDirectory, "batch.ndjson");
        await File.WriteAllTextAsync(batchFile, $$"""
            {"actor": "order/b1", "kind": "insert", "body": {"total": 5}, "messageId": "{{Guid.NewGuid()}}"}
            {"actor": "order/b2", "kind": "insert", "body": {"total": 6}, "messageId": "{{Guid.NewGuid()}}"}

            {"actor": "order/b1", "kind": "modify", "body": {"total": 7}, "expectedVersion": 1, "messageId": "{{Guid.NewGuid()}}"}
            """);
        var batch = await Pr2Async("send-batch", "1", batchFile);
        Assert.Contains("accepted: 3 messages, positions ", batch.Output, StringComparison.Ordinal);
        Assert.Contains("already accepted: 3 messages", (await Pr2Async("send-batch", "1", batchFile)).Output, StringComparison.Ordinal);
        Assert.Contains("version  2", (await Pr2Async("get", "1", "order/b1")).Output, StringComparison.Ordinal);
        var refusedFile = Path.Combine(_dataDirectory, "refused.ndjson");
        await File.WriteAllTextAsync(refusedFile, """
            {"actor": "order/b3", "kind": "insert", "body": {"total": 1}}
            {"actor": "order/b2", "kind": "insert", "body": {"total": 2}}
            """);
        var refusedBatch = await ChildProcess.RunPr2Async(Gateway, "send-batch", "1", refusedFile);
        Assert.Equal(1, refusedBatch.ExitCode);
        Assert.Contains("error: BatchRefused: the batch was refused, nothing of it was written (1 refused)", refusedBatch.Error, StringComparison.Ordinal);
        Assert.Contains("message 2 (", refusedBatch.Error, StringComparison.Ordinal);
        Assert.Contains("RecordExists: 1:order/b2 already exists", refusedBatch.Error, StringComparison.Ordinal);
        Assert.Contains("status   missing", (await Pr2Async("get", "1", "order/b3")).Output, StringComparison.Ordinal);
        var notNdjson = await ChildProcess.RunPr2Async(Gateway, "send-batch", "1", badFile);
        Assert.Equal(2, notNdjson.ExitCode);
        Assert.Contains("line 1: not a message", notNdjson.Error, StringComparison.Ordinal);

        // The README's HTTP walk-through, run as written (only the port differs).
        var http = await RunReadmeHttpWalkthroughAsync();
        Assert.True(http.ExitCode == 0, $"walk-through exited {http.ExitCode}: {http.Error}\n{http.Output}");
        Assert.Contains("\"actor\":\"order/7\",\"stamp\"", http.Output, StringComparison.Ordinal);
        Assert.Matches("\"record\":\\{\"shard\":1,\"actor\":\"order/7\",\"status\":\"live\",\"version\":2,\"state\":\\{[^}]*\"total\":12", http.Output);
        Assert.Matches("\"records\":\\[[^\\]]*\"actor\":\"order/7\"", http.Output);
        Assert.Contains("\"status\":409,\"detail\":\"1:order/7", http.Output, StringComparison.Ordinal);
        Assert.Contains("\"code\":\"RecordExists\"", http.Output, StringComparison.Ordinal);
        Assert.Contains("\"shards\":[", http.Output, StringComparison.Ordinal);
        Assert.Contains("event: change", http.Output, StringComparison.Ordinal);
        Assert.Matches("(?m)^token=[A-Za-z0-9_-]{20,}$", http.Output);

        // Reads from the tool: a query in one snapshot, the record as of its first stamp, and changes as they happened.
        var query = (await Pr2Async("query", "1", "order", "--contains", """{"customer": "c-7"}""")).Output;
        Assert.Contains("order/42", query, StringComparison.Ordinal);
        Assert.Contains("order/7", query, StringComparison.Ordinal);
        Assert.Contains("records from replica 0 at position", query, StringComparison.Ordinal);
        var firstStamp = Regex.Match(insert.Output, @"stamp (\d+@1)").Groups[1].Value;
        var first = (await Pr2Async("get", "1", "order/42", "--as-of", firstStamp)).Output;
        Assert.Contains("version  1", first, StringComparison.Ordinal);
        Assert.Contains("\"total\": 10", first, StringComparison.Ordinal);
        var watched = (await Pr2Async("watch", "1", "--type", "order", "--after", "0", "--count", "3")).Output.Trim().Split('\n');
        Assert.Equal(["insert order/42 v1", "modify order/42 v2", "cancel order/42 v3"], watched.Select(line => string.Join(' ', line.Split(' ')[2..5])));
        var watchedJson = (await Pr2Async("watch", "1", "--type", "order", "--after", "0", "--count", "3", "--json")).Output.Trim().Split('\n');
        Assert.Equal(["insert", "modify", "cancel"], watchedJson.Select(line => JsonDocument.Parse(line).RootElement.GetProperty("kind").GetString()));
        Assert.Matches("^[0-9]+@1$", JsonDocument.Parse(watchedJson[0]).RootElement.GetProperty("stamp").GetString()!);
        // Each change's resume token goes on right after it.
        var resume = JsonDocument.Parse(watchedJson[0]).RootElement.GetProperty("resume").GetString()!;
        var resumed = (await Pr2Async("watch", "1", "--type", "order", "--after", resume, "--count", "2")).Output.Trim().Split('\n');
        Assert.Equal(["modify order/42 v2", "cancel order/42 v3"], resumed.Select(line => string.Join(' ', line.Split(' ')[2..5])));
        var badAfter = await ChildProcess.RunPr2Async(Gateway, "watch", "1", "--after", "yesterday");
        Assert.Equal(2, badAfter.ExitCode);
        Assert.Contains("neither a resume token nor a journal position", badAfter.Error, StringComparison.Ordinal);

        // The operator's endpoints answer on the embedded default too.
        using (var operatorHttp = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{_httpPort}"), Timeout = TimeSpan.FromSeconds(30) })
        {
            foreach (var path in new[] { "/healthz", "/ready", "/metrics", "/dashboard/", "/", "/docs/" })
            {
                Assert.True((await operatorHttp.GetAsync(path)).StatusCode == HttpStatusCode.OK, $"{path} did not answer 200 on the embedded default");
            }
        }

        // A stop request: the silo and its embedded PostgreSQL stop cleanly.
        _silo!.Terminate();
        await _silo.WaitForExitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(0, _silo.ExitCode);
        Assert.False(File.Exists(Path.Combine(_dataDirectory, "postmaster.pid")), "embedded PostgreSQL still running");

        await StartSiloAsync();
        var again = JsonDocument.Parse((await Pr2Async("get", "1", "order/42", "--json")).Output).RootElement;
        Assert.Equal("canceled", again.GetProperty("status").GetString());
        Assert.Equal(3, again.GetProperty("version").GetInt64());
        Assert.Equal(12, again.GetProperty("state").GetProperty("total").GetInt32());
        Assert.Contains("big-orders", (await Pr2Async("rules", "list")).Output, StringComparison.Ordinal);
        Assert.Contains("rule big-orders removed", (await Pr2Async("rules", "remove", "big-orders")).Output, StringComparison.Ordinal);
        Assert.DoesNotContain("big-orders", (await Pr2Async("rules", "list")).Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_silo_killed_with_SIGKILL_starts_again_on_its_embedded_data()
    {
        await StartSiloAsync();
        await Pr2Async("send", "1", "crash/1", "insert", """{"before": "the kill"}""");

        // SIGKILL: no shutdown, so the embedded PostgreSQL (a daemon of its own) is left running on the data directory.
        _silo!.Kill();
        Assert.True(File.Exists(Path.Combine(_dataDirectory, "postmaster.pid")), "the embedded server did not outlive the silo: this test checks nothing");

        await StartSiloAsync();
        var record = JsonDocument.Parse((await Pr2Async("get", "1", "crash/1", "--json")).Output).RootElement;
        Assert.Equal("the kill", record.GetProperty("state").GetProperty("before").GetString());
        await Pr2Async("send", "1", "crash/1", "modify", """{"after": "the restart"}""");
    }

    [Fact]
    public async Task The_silo_and_the_tool_answer_usage_questions_without_a_cluster()
    {
        using var help = ChildProcess.StartDotnet("PR2.Silo.dll", ["--help"]);
        await help.WaitForExitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("Usage: PR2.Silo", help.Output, StringComparison.Ordinal);
        using var version = ChildProcess.StartDotnet("PR2.Silo.dll", ["--version"]);
        await version.WaitForExitAsync(TimeSpan.FromSeconds(60));
        Assert.Matches("^pr2 silo [0-9]+\\.[0-9]+\\.[0-9]+", version.Output.Trim());

        // Mistakes the user can fix are named before any connection is tried (port 1: nothing listens there).
        var missing = await ChildProcess.RunPr2Async("127.0.0.1:1", "rules", "add", "/nonexistent/rule.yaml");
        Assert.Equal((2, "error: /nonexistent/rule.yaml: no such rule file"), (missing.ExitCode, missing.Error.Split('\n')[0].Trim()));
        var badActor = await ChildProcess.RunPr2Async("127.0.0.1:1", "get", "x:order/1");
        Assert.Equal(2, badActor.ExitCode);
        Assert.Contains("'x' is not a shard code", badActor.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_postgres_binaries_stop_the_silo_with_one_line_saying_what_to_do()
    {
        using var silo = ChildProcess.StartDotnet("PR2.Silo.dll", [], new Dictionary<string, string>
        {
            ["Pr2__Embedded__DataDirectory"] = _dataDirectory,
            ["Pr2__Embedded__PostgresBin"] = "/nonexistent/bin",
        });
        await silo.WaitForExitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(1, silo.ExitCode);
        Assert.Equal(
            "pr2 silo cannot start: PostgreSQL server binaries (initdb, pg_ctl) were not found in '/nonexistent/bin' (Pr2:Embedded:PostgresBin). " +
            "Point it at the directory that holds them, or remove it to search PATH and /usr/lib/postgresql/*/bin.",
            silo.Error.Trim());
    }

    [Fact]
    public async Task A_bad_topology_stops_the_silo_with_the_keys_at_fault()
    {
        using var silo = ChildProcess.StartDotnet("PR2.Silo.dll", [], new Dictionary<string, string>
        {
            ["Pr2__Topology__Shards__0__Replicas__0"] = "Database=control",
            ["Pr2__Topology__Shards__x__Replicas__0"] = "Host=127.0.0.1;Database=x",
            ["Pr2__Silo__SiloPort"] = _siloPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Pr2__Silo__GatewayPort"] = _gatewayPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        await silo.WaitForExitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(1, silo.ExitCode);
        Assert.Equal(
            "pr2 silo cannot start: Pr2:Topology:Shards:0:Replicas:0: connection string has no Host; Pr2:Topology:Shards:x: a shard code must be an integer >= 0",
            silo.Error.Trim());
    }

    public void Dispose()
    {
        if (_silo is { HasExited: false })
        {
            _silo.Terminate();
            _silo.WaitForExitAsync(TimeSpan.FromSeconds(30)).GetAwaiter().GetResult();
        }

        _silo?.Dispose();
        try
        {
            Directory.Delete(_dataDirectory, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp directory is harmless.
        }
    }

    private async Task StartSiloAsync()
    {
        _silo?.Dispose();
        var environment = new Dictionary<string, string>
        {
            ["Pr2__Embedded__DataDirectory"] = _dataDirectory,
            ["Pr2__Silo__SiloPort"] = _siloPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Pr2__Silo__GatewayPort"] = _gatewayPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Pr2__Http__Port"] = _httpPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            // Each shutdown stage and PR2's own steps in the output, so a silo that does not stop in time shows where it is.
            ["Logging__LogLevel__Orleans.Runtime.SiloLifecycleSubject"] = "Debug",
            ["Logging__LogLevel__Orleans.Runtime.Silo"] = "Information",
            ["Logging__LogLevel__Microsoft.Extensions.Hosting.Internal.Host"] = "Debug",
            ["Logging__LogLevel__PR2"] = "Debug",
        };
        if (Environment.GetEnvironmentVariable("PR2_PG_BIN") is { } bin)
        {
            environment["Pr2__Embedded__PostgresBin"] = bin;
        }

        _silo = ChildProcess.StartDotnet("PR2.Silo.dll", [], environment);
        await _silo.WaitForOutputAsync("PR2 silo is running", TimeSpan.FromSeconds(90));
        Assert.False(_silo.HasExited, $"silo exited: {_silo.Output}\n{_silo.Error}");
    }

    // The sh block after the http-walkthrough marker in README.md, pointed at this silo's HTTP port, run by bash.
    private async Task<(int ExitCode, string Output, string Error)> RunReadmeHttpWalkthroughAsync()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "PR2.Orleans.sln")))
        {
            directory = directory.Parent;
        }

        var readme = await File.ReadAllTextAsync(Path.Combine(directory!.FullName, "README.md"));
        var block = readme[readme.IndexOf("<!-- http-walkthrough -->", StringComparison.Ordinal)..];
        block = block[(block.IndexOf("```sh\n", StringComparison.Ordinal) + 6)..];
        block = block[..block.IndexOf("```", StringComparison.Ordinal)];
        var script = block.Replace("localhost:8080", $"127.0.0.1:{_httpPort}", StringComparison.Ordinal) + "echo \"token=$TOKEN\"\n";
        using var bash = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("bash", ["-c", script])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var output = bash.StandardOutput.ReadToEndAsync();
        var error = bash.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await bash.WaitForExitAsync(deadline.Token);
        return (bash.ExitCode, await output, await error);
    }

    // Runs pr2 and requires success.
    private async Task<(int ExitCode, string Output, string Error)> Pr2Async(params string[] arguments)
    {
        var result = await ChildProcess.RunPr2Async(Gateway, arguments);
        Assert.True(result.ExitCode == 0, $"pr2 {string.Join(' ', arguments)} exited {result.ExitCode}: {result.Error}");
        return result;
    }
}
