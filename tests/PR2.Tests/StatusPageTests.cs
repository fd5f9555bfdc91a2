using System.Net;
using System.Text.Json;
using PR2.Client;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// The status page at <c>/</c> in a real headless browser: it loads, shows every shard, updates after a write without
/// being reloaded; and the Orleans Dashboard answers at <c>/dashboard</c>.
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

        await new Pr2Client(silo.ClusterClient).SendAsync(2, "page/1", MessageKind.Insert, """{"seen": true}""");
        await Eventually.TrueAsync(async () =>
                long.Parse(JsonSerializer.Deserialize<string>(await browser.EvaluateAsync(head))!, System.Globalization.CultureInfo.InvariantCulture) > before,
            TimeSpan.FromSeconds(20), "shard 2's head on the page moves past its value before the write");
        Assert.Equal("\"\"", await browser.EvaluateAsync("document.getElementById('error').textContent"));
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
