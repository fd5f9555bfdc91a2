using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using PR2.Silo;
using PR2.Silo.Embedded;
using PR2.Silo.Http;

if (args is ["--help"] or ["-h"] or ["-?"])
{
    Console.WriteLine(SiloUsage.Text);
    return 0;
}

if (args is ["--version"])
{
    Console.WriteLine($"pr2 silo {SiloUsage.Version}");
    return 0;
}

// appsettings.json is read from beside the executable, wherever the silo is started from.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
PostgresServer? embedded = null;
WebApplication? host = null;
HttpApiOptions? http = null;
try
{
    // No topology configured: run on a local PostgreSQL server started for us.
    if (EmbeddedDefault.IsNeeded(builder.Configuration))
    {
        embedded = await EmbeddedDefault.StartAsync(builder.Configuration);
    }

    builder.UseOrleans(silo => silo.AddPr2Silo(builder.Configuration).UsePr2Clustering(builder.Configuration));
    http = builder.AddPr2HttpApi();
    host = builder.Build();
    host.UsePr2HttpApi(http);
    await host.StartAsync();
}
catch (Exception e)
{
    // One clear message instead of a stack trace: what is wrong and which setting to look at.
    await Console.Error.WriteLineAsync($"pr2 silo cannot start: {StartupErrors.Describe(e)}");
    if (host is not null)
    {
        await host.DisposeAsync();
    }

    if (embedded is not null)
    {
        await embedded.DisposeAsync();
    }

    return 1;
}

Console.WriteLine(embedded is null
    ? "PR2 silo is running. Ctrl-C stops it."
    : $"PR2 silo is running on the embedded PostgreSQL (127.0.0.1:{embedded.Port}, data in {embedded.DataDirectory}); shards {string.Join(", ", EmbeddedDefault.Shards)}. Ctrl-C stops it.");
var gatewayPort = builder.Configuration.GetValue("Pr2:Silo:GatewayPort", new SiloOptions().GatewayPort);
Console.WriteLine($"Clients connect to the gateway at 127.0.0.1:{gatewayPort} (Pr2:Silo:GatewayPort), e.g. dotnet run --project Client/Cli -- status");
Console.WriteLine($"HTTP API at {string.Join(", ", host.Urls)}/v1 (Pr2:Http), OpenAPI document at /openapi/v1.json{(http.IsOpen ? "; no API keys configured: open to loopback callers only" : "")}");
await host.WaitForShutdownAsync();
await host.DisposeAsync();
if (embedded is not null)
{
    await embedded.DisposeAsync();
}

return 0;
