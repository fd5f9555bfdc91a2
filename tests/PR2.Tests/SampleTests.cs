using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// The samples as a user runs them, each from its own build output: the ASP.NET Core orders frontend (samples/OrdersWeb)
/// against a real silo, and the silo host with its own rule and journal stream grain (samples/SiloWithRule).
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class SampleTests(PostgresFixture postgres)
{
    [Fact]
    public async Task The_orders_web_sample_places_changes_and_reads_a_typed_order_through_a_silo()
    {
        var topology = postgres.CreateTopology("sample_web", 0, 1);
        await using var silo = await HttpSilo.StartAsync(topology.Settings);
        var port = LoopbackPorts.Free();
        using var web = ChildProcess.StartDotnet("OrdersWeb.dll", [], new Dictionary<string, string>
        {
            ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{port}",
            ["Pr2__Client__Gateways__0"] = $"127.0.0.1:{silo.GatewayPort}",
            ["Pr2__Client__ClusterId"] = silo.ClusterId,
            ["Pr2__Client__ServiceId"] = silo.ClusterId,
        }, directory: ChildProcess.OutputDirectory("samples/OrdersWeb"));
        await web.WaitForOutputAsync("Application started", TimeSpan.FromSeconds(60));
        Assert.False(web.HasExited, $"the sample exited: {web.Output}\n{web.Error}");

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
        var placed = await http.PostAsJsonAsync("/orders/42", new { customer = "c-7", total = 10.5m, note = "rush" });
        Assert.Equal(HttpStatusCode.OK, placed.StatusCode);
        var changed = await http.PatchAsJsonAsync("/orders/42?expectedVersion=1", new { customer = "c-7", total = 12m });
        Assert.Equal(HttpStatusCode.OK, changed.StatusCode);
        var again = await http.PostAsJsonAsync("/orders/42", new { customer = "c-8", total = 1m });
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);

        var read = JsonDocument.Parse(await http.GetStringAsync("/orders/42")).RootElement;
        Assert.Equal(2, read.GetProperty("version").GetInt64());
        var order = read.GetProperty("order");
        Assert.Equal(("c-7", 12m, "rush"), (order.GetProperty("customer").GetString(), order.GetProperty("total").GetDecimal(), order.GetProperty("note").GetString()));
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/orders/43")).StatusCode);
    }

    [Fact]
    public async Task The_silo_sample_counts_orders_with_its_own_grain_following_the_journal_stream()
    {
        var topology = postgres.CreateTopology("sample_silo", 0, 1);
        var environment = topology.Settings.Where(p => p.Value is not null).ToDictionary(p => p.Key.Replace(":", "__", StringComparison.Ordinal), p => p.Value!);
        var httpPort = LoopbackPorts.Free();
        environment["Pr2__Silo__SiloPort"] = LoopbackPorts.Free().ToString(System.Globalization.CultureInfo.InvariantCulture);
        environment["Pr2__Silo__GatewayPort"] = LoopbackPorts.Free().ToString(System.Globalization.CultureInfo.InvariantCulture);
        environment["Pr2__Http__Port"] = httpPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        using var silo = ChildProcess.StartDotnet("SiloWithRule.dll", [], environment, directory: ChildProcess.OutputDirectory("samples/SiloWithRule"));
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{httpPort}"), Timeout = TimeSpan.FromSeconds(30) };
        await Eventually.TrueAsync(async () =>
        {
            Assert.False(silo.HasExited, $"the sample exited: {silo.Output}\n{silo.Error}");
            try
            {
                return (await http.GetAsync("/ready")).IsSuccessStatusCode;
            }
            catch (HttpRequestException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(90), "the sample silo is ready");
        async Task SendAsync(string order, string kind, object? body)
        {
            var sent = body is null
                ? await http.PostAsJsonAsync($"/v1/shards/1/actors/order/{order}/messages", new { kind })
                : await http.PostAsJsonAsync($"/v1/shards/1/actors/order/{order}/messages", new { kind, body });
            Assert.True(sent.IsSuccessStatusCode, await sent.Content.ReadAsStringAsync());
        }

        await SendAsync("1", "insert", new { customer = "c-1", total = 10.5m });
        await SendAsync("2", "insert", new { customer = "c-2", total = 1200m });
        await SendAsync("3", "insert", new { customer = "c-1", total = 4m });
        await SendAsync("3", "cancel", null);
        await SendAsync("1", "modify", new { total = 11m });

        JsonElement totals = default;
        await Eventually.TrueAsync(async () =>
        {
            totals = JsonDocument.Parse(await http.GetStringAsync("/sample/order-totals/1")).RootElement;
            return totals.GetProperty("placed").GetInt64() == 3 && totals.GetProperty("canceled").GetInt64() == 1;
        }, TimeSpan.FromSeconds(30), "the sample's grain counted 3 placed orders and 1 canceled");
        Assert.Equal(1214.5m, totals.GetProperty("total").GetDecimal());
    }
}
