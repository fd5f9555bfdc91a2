using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using PR2.Silo;
using PR2.Silo.Embedded;

// appsettings.json is read from beside the executable, wherever the silo is started from.
var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });

// No topology configured: run on a local PostgreSQL server started for us.
await using var embedded = EmbeddedDefault.IsNeeded(builder.Configuration)
    ? await EmbeddedDefault.StartAsync(builder.Configuration)
    : null;

builder.UseOrleans(silo => silo.AddPr2Silo(builder.Configuration).UsePr2Clustering(builder.Configuration));

using var host = builder.Build();
await host.StartAsync();
Console.WriteLine(embedded is null
    ? "PR2 silo is running. Ctrl-C stops it."
    : $"PR2 silo is running on the embedded PostgreSQL (127.0.0.1:{embedded.Port}, data in {embedded.DataDirectory}); shards {string.Join(", ", EmbeddedDefault.Shards)}. Ctrl-C stops it.");
var gatewayPort = builder.Configuration.GetValue("Pr2:Silo:GatewayPort", new SiloOptions().GatewayPort);
Console.WriteLine($"Clients connect to the gateway at 127.0.0.1:{gatewayPort} (Pr2:Silo:GatewayPort).");
await host.WaitForShutdownAsync();
