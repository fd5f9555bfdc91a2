using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// <c>/healthz</c> and <c>/ready</c> on a real silo and Kestrel server, as Kubernetes probes call them (anonymous, even
/// with API keys), and the HTTP binding by ASP.NET Core's own settings.
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
    public async Task A_shard_with_no_replica_that_answers_makes_the_silo_degraded_but_ready_and_names_the_shard()
    {
        var topology = postgres.CreateTopology("degraded", 0);
        var settings = new Dictionary<string, string?>(WithKey(topology.Settings))
        {
            // Nothing listens there: the silo starts all the same, and says which shard it cannot reach.
            ["Pr2:Topology:Shards:7:Replicas:0"] = $"Host=127.0.0.1;Port={ClosedPort()};Database=nowhere;Username=postgres",
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
        var port = ClosedPort();
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

    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
