using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// The samples as a user runs them: the ASP.NET Core orders frontend (samples/OrdersWeb) started from its own build
/// output against a real silo, written to and read from over HTTP.
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
}
