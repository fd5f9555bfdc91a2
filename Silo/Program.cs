using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using PR2.Silo;
using PR2.Silo.Embedded;

// appsettings.json is read from beside the executable, wherever the silo is started from.
var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });
PostgresServer? embedded = null;
IHost? host = null;
try
{
    // No topology configured: run on a local PostgreSQL server started for us.
    if (EmbeddedDefault.IsNeeded(builder.Configuration))
    {
        embedded = await EmbeddedDefault.StartAsync(builder.Configuration);
    }

    builder.UseOrleans(silo => silo.AddPr2Silo(builder.Configuration).UsePr2Clustering(builder.Configuration));
    host = builder.Build();
    await host.StartAsync();
}
catch (Exception e)
{
    // One clear message instead of a stack trace: what is wrong and which setting to look at.
    await Console.Error.WriteLineAsync($"pr2 silo cannot start: {StartupErrors.Describe(e)}");
    host?.Dispose();
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
Console.WriteLine($"Clients connect to the gateway at 127.0.0.1:{gatewayPort} (Pr2:Silo:GatewayPort), e.g. dotnet run --project Client -- status");
await host.WaitForShutdownAsync();
host.Dispose();
if (embedded is not null)
{
    await embedded.DisposeAsync();
}

return 0;
