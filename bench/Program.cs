using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Npgsql;
using PR2.Bench;
using PR2.Grains.Storage;
using PR2.Silo.Embedded;

// PR2 against Marten and raw PostgreSQL, one server, one run. See BenchSettings.Usage.
// Inline socket completions are a runtime switch this process and the silo inherit from the environment: recorded.
var inlineCompletions = Environment.GetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS") == "1";
if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine(BenchSettings.Usage);
    return 0;
}

BenchSettings settings;
try
{
    settings = BenchSettings.Parse(args);
}
catch (Exception e) when (e is ArgumentException or FormatException)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}

var serverSettings = new Dictionary<string, string>(ServerLogEvents.Settings) { ["shared_buffers"] = "128MB", ["synchronous_commit"] = "on", ["fsync"] = "on" };
var dataDirectory = Path.Combine(Path.GetTempPath(), "pr2-bench", Guid.NewGuid().ToString("N")[..8]);
using var throwaway = new ThrowawayDirectory(dataDirectory);
await using var server = settings.PostgresConnectionString is null
    ? await PostgresServer.StartAsync(dataDirectory, PostgresBinaries.Locate(Environment.GetEnvironmentVariable("PR2_PG_BIN")), settings: serverSettings)
    : null;
string Database(string name) => server?.ConnectionString(name) ?? new NpgsqlConnectionStringBuilder(settings.PostgresConnectionString) { Database = name }.ConnectionString;
string Pooled(string name) => new NpgsqlConnectionStringBuilder(Database(name)) { MaxPoolSize = 300 }.ConnectionString;

var run = Guid.NewGuid().ToString("N")[..6];
var pr2Shards = new[] { 0, 1, 2, 3 }.ToDictionary(s => s, s => Pooled($"pr2b_{run}_s{s}"));
// Shard 4 has two replicas (two databases of the one server): the row that moves its primary under load, and its baseline.
var movingShard = new[] { Pooled($"pr2b_{run}_s4a"), Pooled($"pr2b_{run}_s4b") };
foreach (var name in new[] { "bench_raw", "bench_marten" })
{
    await DatabaseCreator.EnsureExistsAsync(Database(name), CancellationToken.None);
}

Console.WriteLine($"PR2 benchmark ({(settings.Short ? "short" : "full")}): writers {string.Join(", ", settings.Writers)}, {settings.Duration.TotalSeconds:0} s per row, " +
    $"{Environment.ProcessorCount} cores, socket completions {(inlineCompletions ? "inline" : "queued")}, PostgreSQL {(server is null ? "given" : $"throwaway on 127.0.0.1:{server.Port}")}");
// The backup rows add a third replica to shard 4 at runtime (pr2 replicas add): its connection string, under a key.
var siloSettings = new Dictionary<string, string> { ["Pr2:Projections:RebuildEntriesPerSecond"] = settings.RebuildRate.ToString(CultureInfo.InvariantCulture) };
if (settings.OverlapAb)
{
    siloSettings["Pr2:Write:OverlapCommits"] = "false";
}

await using var silo = await SiloProcess.StartAsync(pr2Shards.ToDictionary(s => s.Key, s => new[] { s.Value }).Append(new(Pr2Path.MovingShard, movingShard)).ToDictionary(),
    new Dictionary<string, string> { [BackupRows.AddedReplica] = Pooled($"pr2b_{run}_s4c") }, siloSettings);
// With --overlap-ab, a second silo (a cluster of its own, on databases of its own) with overlapped commits on.
var overlapShards = new[] { 0, 1, 2, 3 }.ToDictionary(s => s, s => Pooled($"pr2o_{run}_s{s}"));
await using var overlapSilo = settings.OverlapAb
    ? await SiloProcess.StartAsync(overlapShards.ToDictionary(s => s.Key, s => new[] { s.Value }), settings: new Dictionary<string, string> { ["Pr2:Write:OverlapCommits"] = "true" })
    : null;
var postmaster = server is null ? (int?)null : int.Parse(File.ReadLines(Path.Combine(server.DataDirectory, "postmaster.pid")).First(), CultureInfo.InvariantCulture);
// One pool for questions about the server itself (its settings, its WAL counters).
await using var serverStatistics = NpgsqlDataSource.Create(Database("bench_raw"));
var meter = new ResourceMeter(silo.Pid, postmaster, serverStatistics);
var runner = new Runner(settings, meter);
var overlapMeter = overlapSilo is null ? null : new ResourceMeter(overlapSilo.Pid, postmaster, serverStatistics);
var serverFacts = await ReadServerFactsAsync(serverStatistics);

var shardSources = pr2Shards.ToDictionary(s => s.Key, s => NpgsqlDataSource.Create(s.Value));
await using var pr2 = new Pr2Path(silo, shardSources);
if (new[] { "pr2", "pr2-batch", "delivery", "move", "backup", "rebuild" }.Any(settings.Paths.Contains))
{
    await pr2.ConnectAsync();
}

await using var pr2Overlap = overlapSilo is null ? null : new Pr2Path(overlapSilo, overlapShards.ToDictionary(s => s.Key, s => NpgsqlDataSource.Create(s.Value)), "-overlap");
if (pr2Overlap is not null)
{
    await pr2Overlap.ConnectAsync();
}

// The paths alternate (raw, Marten, PR2, raw, ...), so a slow minute of a shared machine spreads over all of them.
for (runner.Repeat = 1; runner.Repeat <= settings.Repeats; runner.Repeat++)
{
    if (settings.Repeats > 1)
    {
        Console.WriteLine($"repeat {runner.Repeat} of {settings.Repeats}");
    }

    if (settings.Paths.Contains("raw"))
    {
        await using var raw = NpgsqlDataSource.Create(Pooled("bench_raw"));
        await RawPaths.RunAsync(runner, raw, settings.Writers, settings.Batchers);
    }

    if (settings.Paths.Contains("marten"))
    {
        await MartenPaths.RunAsync(runner, Pooled("bench_marten"), settings.Writers, settings.Batchers);
    }

    // With --overlap-ab the two silos' rows take turns going first, so that neither always follows the other's load.
    var overlapFirst = pr2Overlap is not null && runner.Repeat % 2 == 0;
    if (overlapFirst)
    {
        await RunPr2RowsAsync(pr2Overlap!, overlapMeter!, all: false);
    }

    await RunPr2RowsAsync(pr2, meter, all: true);
    if (pr2Overlap is not null && !overlapFirst)
    {
        await RunPr2RowsAsync(pr2Overlap, overlapMeter!, all: false);
    }
}

// The PR2 rows against one silo: per message and batches (all: also the call floor, open loop and insert rows).
async Task RunPr2RowsAsync(Pr2Path path, ResourceMeter siloMeter, bool all)
{
    runner.Meter = siloMeter;
    if (settings.Paths.Contains("pr2"))
    {
        await path.RunClosedLoopAsync(runner, settings.Writers);
        if (all)
        {
            await path.RunCallFloorAsync(runner, settings.Writers);
            runner.Add(await path.RunOpenLoopAsync(meter, settings.OfferedRate, settings.OpenLoopDuration));
            await path.RunInsertRowsAsync(runner, settings.Writers);
        }
    }

    if (settings.Paths.Contains("pr2") || settings.Paths.Contains("pr2-batch"))
    {
        await path.RunBatchRowsAsync(runner, settings.Batchers);
    }

    runner.Meter = meter;
}

runner.Repeat = settings.Repeats;
if (settings.Paths.Contains("pr2") && settings.Soak > TimeSpan.Zero)
{
    var samples = new List<double>();
    var soakStarted = DateTime.UtcNow;
    var soak = await pr2.RunOpenLoopAsync(meter, settings.OfferedRate, settings.Soak,
        settings.SoakInserts ? "pr2-insert-soak" : "pr2-soak", samples.Add, settings.SoakInserts);
    runner.Add(soak);
    var warm = samples.Skip(samples.Count / 5).FirstOrDefault();
    var end = samples.LastOrDefault();
    Console.WriteLine($"  soak: silo memory {warm:N0} MiB after warm-up, {end:N0} MiB at the end ({(end - warm) / Math.Max(1, warm):P1}), errors {soak.Errors}");
    var events = server is null ? [] : ServerLogEvents.Between(server.DataDirectory, soakStarted, DateTime.UtcNow);
    foreach (var line in events.Take(60))
    {
        Console.WriteLine($"  server: {line}");
    }

    if (events.Count > 60)
    {
        Console.WriteLine($"  server: ... {events.Count - 60} more checkpoint and autovacuum lines");
    }
}

if (settings.Paths.Contains("move"))
{
    await pr2.RunMoveRowsAsync(runner, meter, settings.OfferedRate, settings.OpenLoopDuration, settings.Short ? 1 : 2);
}

if (settings.Paths.Contains("backup") || settings.Paths.Contains("rebuild"))
{
    await BackupRows.RunAsync(pr2, runner, meter, settings.OfferedRate, settings.OpenLoopDuration, settings.BackupEntries, settings.Paths);
}

if (settings.Paths.Contains("delivery"))
{
    await DeliveryPath.RunAsync(runner, pr2.Client, pr2.Cluster, meter, settings.OfferedRate, settings.OpenLoopDuration);
}

foreach (var source in shardSources.Values)
{
    await source.DisposeAsync();
}

if (settings.Paths.Contains("anti-entropy"))
{
    // Two fresh replica databases of a shard on the same server: the catch-up copy is what is timed.
    var replicas = new[] { "a", "b" }.Select(r => Pooled($"pr2ae_{run}_{r}")).ToList();
    await using var registry = new PR2.Grains.Storage.ShardRegistry(
        Microsoft.Extensions.Options.Options.Create(new PR2.Grains.Configuration.TopologyOptions
        {
            Shards = { ["0"] = new() { Replicas = [Pooled($"pr2ae_{run}_control")] }, ["1"] = new() { Replicas = replicas } },
        }),
        Microsoft.Extensions.Options.Options.Create(new PR2.Grains.Configuration.WriteOptions()));
    await new SchemaMigrator(registry, Microsoft.Extensions.Logging.Abstractions.NullLogger<SchemaMigrator>.Instance).MigrateAllAsync(CancellationToken.None);
    var set = registry.Get(1);
    runner.Add(await AntiEntropyPath.RunAsync(set.Replicas[0], set.Replicas[1], settings.Short ? 10_000 : 100_000, meter));
}

Report.Print(runner.Rows, settings.Writers, settings.Batchers);
var output = new
{
    machine = new
    {
        cores = Environment.ProcessorCount,
        memory_gib = Math.Round(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1024.0 * 1024 * 1024), 1),
        os = RuntimeInformation.OSDescription,
        dotnet = RuntimeInformation.FrameworkDescription,
        postgres = serverFacts.Version,
    },
    settings = new
    {
        mode = settings.Short ? "short" : "full",
        seconds_per_row = settings.Duration.TotalSeconds,
        warmup_seconds = settings.Warmup.TotalSeconds,
        offered_rate = settings.OfferedRate,
        repeats = settings.Repeats,
        shared_buffers = serverFacts.SharedBuffers,
        synchronous_commit = serverFacts.SynchronousCommit,
        fsync = serverFacts.Fsync,
        inline_socket_completions = inlineCompletions,
        taken_at = DateTimeOffset.UtcNow,
    },
    rows = runner.Rows,
};
Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(settings.OutputPath))!);
await File.WriteAllTextAsync(settings.OutputPath, JsonSerializer.Serialize(output, new JsonSerializerOptions
{
    WriteIndented = true,
    // Rows without latencies (anti-entropy) carry NaN, written as "NaN".
    NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
}));
Console.WriteLine($"results written to {settings.OutputPath}");
var failed = runner.Rows.Where(r => r.Messages == 0 || r.Errors > 0).Select(r => $"{r.Path}/{r.Writers}").ToList();
if (failed.Count > 0)
{
    Console.Error.WriteLine($"paths with errors or no messages: {string.Join(", ", failed)}");
    return 1;
}

return 0;

static async Task<(string Version, string SharedBuffers, string SynchronousCommit, string Fsync)> ReadServerFactsAsync(NpgsqlDataSource source)
{
    async Task<string> Show(string sql)
    {
        await using var command = source.CreateCommand(sql);
        return (string)(await command.ExecuteScalarAsync())!;
    }

    return (await Show("show server_version"), await Show("show shared_buffers"), await Show("show synchronous_commit"), await Show("show fsync"));
}
