using Microsoft.Extensions.DependencyInjection;
using PR2.Client;
using PR2.Tests.Infrastructure;
using PR2.Tests.Streams;

namespace PR2.Tests;

/// <summary>
/// The stock silo (its own process, configured by environment variables as its container image is) hosts the grains of
/// the assemblies named by <c>Pr2:Silo:GrainAssemblies</c>: here a journal stream subscriber, which it activates and
/// feeds through its implicit subscription with no other silo in the cluster.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class GrainAssembliesTests(PostgresFixture postgres)
{
    [Fact]
    public async Task The_stock_silo_hosts_the_grains_of_its_grain_assemblies_and_feeds_their_journal_stream_subscriptions()
    {
        var topology = postgres.CreateTopology("grain_assemblies", 0, 1);
        var settings = new Dictionary<string, string?>(topology.Settings)
        {
            ["Pr2:Silo:Membership"] = postgres.Server.ConnectionString($"grain_asm_members_{Guid.NewGuid():N}"[..30]),
            ["Pr2:Silo:GrainAssemblies:0"] = typeof(ItemSubscriberGrain).Assembly.Location,
        };
        using var silo = await ProcessSilo.StartAsync("grain-assemblies", settings);
        using var host = await ProcessSilo.StartClientAsync(settings["Pr2:Silo:Membership"]!);
        var grains = host.Services.GetRequiredService<IClusterClient>();
        var client = new Pr2Client(grains);

        var ack = await Retrying.CallAsync(() => client.SendAsync(1, "item/loaded", MessageKind.Insert, "{}"));
        var subscriber = grains.GetGrain<IItemSubscriberGrain>(1);
        await Eventually.TrueAsync(async () => (await subscriber.Seen()).Kept.Contains(ack.MessageId), TimeSpan.FromSeconds(30),
            "the subscriber loaded from the grain assembly kept the entry");
        Assert.Equal(1, (await subscriber.Seen()).Activations);
    }
}
