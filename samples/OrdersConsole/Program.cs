using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using PR2;
using PR2.Client;

// A console program on PR2: places an order, changes it, reads it back in the same session, and prints what changed
// in the shard meanwhile. Needs a running cluster: `dotnet run --project Silo` (the embedded default) will do.
var builder = Host.CreateApplicationBuilder(args);
builder.AddPr2Client(options => options.Retry.MaxAttempts = 3);
using var host = builder.Build();
await host.StartAsync();

var client = host.Services.GetRequiredService<IPr2Client>();
var id = $"order/console-{Guid.NewGuid():N}"[..24];
var placed = await client.InsertAsync(1, id, new { customer = "c-7", total = 10 });
Console.WriteLine($"placed {id}: version {placed.Version}, stamp {placed.Stamp}");
var changed = await client.ModifyAsync(1, id, new { total = 12 }, expectedVersion: placed.Version);
var record = await client.ReadRecordAsync<Dictionary<string, object>>(1, id);
Console.WriteLine($"{id} is at version {record.Version}: {string.Join(", ", record.State!.Select(p => $"{p.Key}={p.Value}"))}");

using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(5));
await foreach (var change in client.WatchAsync(1, actorId: id, afterPosition: placed.Position - 1, cancellationToken: stop.Token))
{
    Console.WriteLine($"change at position {change.Position}: {change.Kind} -> version {change.Record.Version}");
    if (change.Record.Version == changed.Version)
    {
        break;
    }
}

await host.StopAsync();
