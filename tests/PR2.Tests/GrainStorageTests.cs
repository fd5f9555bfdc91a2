using PR2.Tests.Infrastructure;
using PR2.Tests.Storage;

namespace PR2.Tests;

/// <summary>
/// Grain state on the ADO.NET provider with PR2's SQL (sql/015) in the control shard's database: two grain types with
/// the same key and the same state name keep their own state (the provider alone keys rows by state name and key
/// only), and state outlives the cluster that wrote it.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class GrainStorageTests(PostgresFixture postgres)
{
    [Fact]
    public async Task Two_grain_types_with_the_same_key_and_state_name_keep_their_own_state_across_a_restart()
    {
        var topology = postgres.CreateTopology("grain_storage", 0);
        var settings = new Dictionary<string, string?>(topology.Settings) { ["Pr2:Silo:ServiceId"] = "grain-storage-test" };
        await using (var cluster = await TestClusters.StartAsync(settings))
        {
            var first = cluster.Client.GetGrain<INoteGrain>(7, typeof(FirstNoteGrain).FullName);
            var second = cluster.Client.GetGrain<INoteGrain>(7, typeof(SecondNoteGrain).FullName);
            await first.Write("first");
            await second.Write("second");
            await first.Write("first, again"); // a second write checks the version the first one left
            Assert.Equal(("first, again", "second"), (await first.Read(), await second.Read()));
        }

        await using (var cluster = await TestClusters.StartAsync(settings))
        {
            var first = cluster.Client.GetGrain<INoteGrain>(7, typeof(FirstNoteGrain).FullName);
            var second = cluster.Client.GetGrain<INoteGrain>(7, typeof(SecondNoteGrain).FullName);
            Assert.Equal(("first, again", "second"), (await first.Read(), await second.Read()));
        }
    }
}
