using System.Net;
using System.Text.Json;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// <c>/healthz</c>, <c>/ready</c> and <c>/metrics</c> on a real silo and Kestrel server, as Kubernetes probes and
/// Prometheus call them (anonymous, even with API keys), and the HTTP binding by ASP.NET Core's own settings.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class HealthEndpointTests(PostgresFixture postgres)
{
    private const string Key = "health-test-key-0123456789";

    [Fact]
    public async Task Healthz_and_ready_answer_anonymously_on_a_running_silo()
    {
        var topology = postgres.CreateTopology("health", 0, 1);
        await using var silo = await HttpSilo.StartAsync(WithKey(topology.Settings));
        using var http = silo.Client();

        var live = await GetAsync(http, "/healthz");
        Assert.Equal((HttpStatusCode.OK, "Healthy"), (live.Status, live.Json.GetProperty("status").GetString()));
        var ready = await GetAsync(http, "/ready");
        Assert.Equal((HttpStatusCode.OK, "Healthy"), (ready.Status, ready.Json.GetProperty("status").GetString()));
        Assert.Equal("up", ready.Json.GetProperty("checks").GetProperty("cluster").GetProperty("data").GetProperty("shard 1").GetString());
        // The API itself still wants the key.
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/v1/status")).StatusCode);
    }

    [Fact]
    public async Task Metrics_count_acks_refusals_and_commits_and_include_Orleans_and_Npgsql_meters()
    {
        var topology = postgres.CreateTopology("metrics", 0, 1);
        await using var silo = await HttpSilo.StartAsync(WithKey(topology.Settings));
        using var http = silo.Client(Key);
        var body = new StringContent("""{"kind": "insert", "body": {"n": 1}}""", System.Text.Encoding.UTF8, "application/json");
        Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("/v1/shards/1/actors/gauge/1/messages", body)).StatusCode);
        body = new StringContent("""{"kind": "insert", "body": {"n": 2}}""", System.Text.Encoding.UTF8, "application/json");
        Assert.Equal(HttpStatusCode.Conflict, (await http.PostAsync("/v1/shards/1/actors/gauge/1/messages", body)).StatusCode);

        using var anonymous = silo.Client();
        var text = "";
        await Eventually.TrueAsync(async () =>
        {
            text = await anonymous.GetStringAsync("/metrics");
            return text.Contains("pr2_refusals_total{", StringComparison.Ordinal);
        }, TimeSpan.FromSeconds(10), "the refusal in the scrape");
        var lines = text.Split('\n');
        Assert.Contains(lines, l => l.StartsWith("pr2_acks_total{", StringComparison.Ordinal) && l.Contains("kind=\"Insert\"", StringComparison.Ordinal)
            && l.Contains("shard=\"1\"", StringComparison.Ordinal) && l.EndsWith(" 1", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("pr2_refusals_total{", StringComparison.Ordinal) && l.Contains("code=\"RecordExists\"", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("pr2_ack_duration_seconds_bucket{", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("pr2_commit_batch_size_", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("pr2_writer_takeovers_total{", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("orleans_", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("db_client_", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_write_over_HTTP_its_grain_calls_and_its_commit_SQL_form_one_trace()
    {
        // Any listener gets the spans (the silo's own tracer listens only when OTLP is configured); the one request of
        // this test is its only ASP.NET Core span.
        var topology = postgres.CreateTopology("traces", 0, 1);
        await using var silo = await HttpSilo.StartAsync(WithKey(topology.Settings));
        using var http = silo.Client(Key);
        var spans = new System.Collections.Concurrent.ConcurrentBag<System.Diagnostics.Activity>();
        using var listener = new System.Diagnostics.ActivityListener
        {
            ShouldListenTo = source => source.Name is "Microsoft.AspNetCore" or "Npgsql" or "PR2" || source.Name.StartsWith("Microsoft.Orleans", StringComparison.Ordinal),
            Sample = (ref System.Diagnostics.ActivityCreationOptions<System.Diagnostics.ActivityContext> _) => System.Diagnostics.ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = spans.Add,
        };
        System.Diagnostics.ActivitySource.AddActivityListener(listener);

        var body = new StringContent("""{"kind": "insert", "body": {"n": 1}}""", System.Text.Encoding.UTF8, "application/json");
        Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("/v1/shards/1/actors/traced/1/messages", body)).StatusCode);

        System.Diagnostics.Activity? request = null;
        await Eventually.TrueAsync(() => Task.FromResult((request = spans.FirstOrDefault(a => a.Source.Name == "Microsoft.AspNetCore")) is not null), TimeSpan.FromSeconds(10), "the request's span");
        var trace = spans.Where(a => a.TraceId == request!.TraceId).ToList();
        Assert.Contains(trace, a => a.Source.Name.StartsWith("Microsoft.Orleans", StringComparison.Ordinal));
        Assert.Contains(trace, a => a.Source.Name == "PR2" && a.OperationName == "pr2.commit");
        Assert.Contains(trace, a => a.Source.Name == "Npgsql" && a.Parent?.OperationName == "pr2.commit");
    }

    [Fact]
    public async Task A_shard_with_no_replica_that_answers_makes_the_silo_degraded_but_ready_and_names_the_shard()
    {
        var topology = postgres.CreateTopology("degraded", 0);
        var settings = new Dictionary<string, string?>(WithKey(topology.Settings))
        {
            // Nothing listens there: the silo starts all the same, and says which shard it cannot reach.
            ["Pr2:Topology:Shards:7:Replicas:0"] = $"Host=127.0.0.1;Port={LoopbackPorts.Free()};Database=nowhere;Username=postgres",
        };
        await using var silo = await HttpSilo.StartAsync(settings);
        using var http = silo.Client();

        var ready = await GetAsync(http, "/ready");
        Assert.Equal(HttpStatusCode.OK, ready.Status);
        Assert.Equal("Degraded", ready.Json.GetProperty("status").GetString());
        var cluster = ready.Json.GetProperty("checks").GetProperty("cluster");
        Assert.Equal("no replica of shard 7 answers", cluster.GetProperty("description").GetString());
        Assert.Equal("shard 7 replica 0", cluster.GetProperty("data").GetProperty("schema pending").GetString());
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(http, "/healthz")).Status);
    }

    [Fact]
    public async Task Kestrel_endpoints_from_ASP_NET_Core_settings_replace_the_Pr2_address()
    {
        var topology = postgres.CreateTopology("kestrel", 0);
        var port = LoopbackPorts.Free();
        var settings = new Dictionary<string, string?>(topology.Settings) { ["Kestrel:Endpoints:Main:Url"] = $"http://127.0.0.1:{port}" };
        await using var silo = await HttpSilo.StartAsync(settings);
        Assert.Equal(port, silo.Address.Port);
        using var http = silo.Client();
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(http, "/healthz")).Status);
    }

    [Fact]
    public async Task An_open_API_bound_off_loopback_by_ASP_NET_Core_settings_is_refused()
    {
        var topology = postgres.CreateTopology("openurls", 0);
        var settings = new Dictionary<string, string?>(topology.Settings) { ["urls"] = "http://0.0.0.0:0" };
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => HttpSilo.StartAsync(settings));
        Assert.Contains("would listen on 0.0.0.0, which is not loopback, so it needs authentication", error.Message, StringComparison.Ordinal);
    }

    private static Dictionary<string, string?> WithKey(IReadOnlyDictionary<string, string?> settings) => new(settings)
    {
        ["Pr2:Http:ApiKeys:0:Name"] = "test",
        ["Pr2:Http:ApiKeys:0:Key"] = Key,
        ["Pr2:Http:ApiKeys:0:Shards:0"] = "*",
    };

    private static async Task<(HttpStatusCode Status, JsonElement Json)> GetAsync(HttpClient http, string path)
    {
        using var response = await http.GetAsync(path);
        return (response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone());
    }
}
