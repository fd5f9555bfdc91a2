using System.Net;
using System.Text.Json;
using PR2.Client;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// The status page at <c>/</c> in a real headless browser: it loads, shows every shard, updates after a write without
/// being reloaded; the API explorer at <c>/docs</c> lists every endpoint; and the Orleans Dashboard answers at
/// <c>/dashboard</c>.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class StatusPageTests(PostgresFixture postgres)
{
    [Fact]
    public async Task The_status_page_shows_every_shard_and_updates_after_a_write()
    {
        var topology = postgres.CreateTopology("page", 0, 1, 2);
        await using var silo = await HttpSilo.StartAsync(topology.Settings);
        await using var browser = await HeadlessChromium.OpenAsync(silo.Address);

        const string shards = "[...document.querySelectorAll('#shards tr')].map(r => r.dataset.shard).join(' ')";
        var seen = "";
        try
        {
            await Eventually.TrueAsync(async () => (seen = await browser.EvaluateAsync(shards)) == "\"0 1 2\"",
                TimeSpan.FromSeconds(20), "the page lists shards 0, 1 and 2");
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Assert.Fail($"{e.Message}: rows {seen}, page error {await browser.EvaluateAsync("document.getElementById('error').textContent")}, " +
                $"location {await browser.EvaluateAsync("location.href")}");
        }
        const string head = "document.querySelector('#shards tr[data-shard=\"2\"] td:nth-child(2)').textContent";
        var before = long.Parse(JsonSerializer.Deserialize<string>(await browser.EvaluateAsync(head))!, System.Globalization.CultureInfo.InvariantCulture);

        var client = new Pr2Client(silo.ClusterClient);
        await client.SendAsync(2, "page/1", MessageKind.Insert, """{"seen": true}""");
        await Eventually.TrueAsync(async () =>
                long.Parse(JsonSerializer.Deserialize<string>(await browser.EvaluateAsync(head))!, System.Globalization.CultureInfo.InvariantCulture) > before,
            TimeSpan.FromSeconds(20), "shard 2's head on the page moves past its value before the write");

        // A rule added while the page is open shows up in its rules table, with its state and trigger.
        await client.PutRuleAsync("""
            {"name": "page-audit", "on": {"type": "page", "kinds": ["insert"]}, "do": [{"send": {"shard": 0, "actor": "audit/{entry.key}", "kind": "insert"}}]}
            """);
        const string rules = "[...document.querySelectorAll('#rules tr')].map(r => [...r.cells].map(c => c.textContent).join(' ')).join('|')";
        await Eventually.TrueAsync(async () => await browser.EvaluateAsync(rules) == "\"page-audit active 1 page insert\"",
            TimeSpan.FromSeconds(20), "the rules table lists page-audit as active, on page inserts");
        Assert.Equal("\"\"", await browser.EvaluateAsync("document.getElementById('error').textContent"));
    }

    [Fact]
    public async Task The_API_explorer_at_docs_shows_every_endpoint_of_the_OpenAPI_document_each_with_a_summary()
    {
        var topology = postgres.CreateTopology("explorer", 0, 1);
        await using var silo = await HttpSilo.StartAsync(topology.Settings);
        using var http = silo.Client();
        var document = JsonDocument.Parse(await http.GetStringAsync("/openapi/v1.json")).RootElement;
        var operations = (from path in document.GetProperty("paths").EnumerateObject()
                          from operation in path.Value.EnumerateObject()
                          select (Name: $"{operation.Name.ToUpperInvariant()} {path.Name}", Summary: operation.Value.TryGetProperty("summary", out var summary) ? summary.GetString() : null)).ToList();
        Assert.True(operations.Count >= 13, $"only {operations.Count} operations in the document");
        Assert.All(operations, o => Assert.False(string.IsNullOrWhiteSpace(o.Summary), $"{o.Name} has no summary"));

        // Swagger UI, in a real browser, from the silo alone (its assets come from the package, not a CDN).
        await using var browser = await HeadlessChromium.OpenAsync(new Uri(silo.Address, "docs/"));
        await Eventually.TrueAsync(async () => await browser.EvaluateAsync("document.querySelectorAll('.opblock').length") == operations.Count.ToString(System.Globalization.CultureInfo.InvariantCulture),
            TimeSpan.FromSeconds(20), $"the explorer lists the {operations.Count} operations");
    }

    [Fact]
    public async Task The_Orleans_dashboard_answers_and_wants_the_API_key_when_keys_are_configured()
    {
        var topology = postgres.CreateTopology("dashboard", 0);
        var settings = new Dictionary<string, string?>(topology.Settings)
        {
            ["Pr2:Http:ApiKeys:0:Name"] = "ops",
            ["Pr2:Http:ApiKeys:0:Key"] = "dashboard-key-0123456789",
            ["Pr2:Http:ApiKeys:0:Shards:0"] = "*",
        };
        await using var silo = await HttpSilo.StartAsync(settings);
        using var anonymous = silo.Client();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/dashboard/")).StatusCode);
        using var ops = silo.Client("dashboard-key-0123456789");
        var page = await ops.GetAsync("/dashboard/");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("<html", await page.Content.ReadAsStringAsync(), StringComparison.OrdinalIgnoreCase);
        // The status page itself is anonymous: it holds no data, and asks for the key to fetch any.
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/")).StatusCode);
    }
}
