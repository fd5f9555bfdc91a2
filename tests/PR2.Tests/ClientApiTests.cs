using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using PR2.Client;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// The client API as a .NET frontend uses it: <c>AddPr2Client</c> in a host (gateways found in the cluster's
/// membership), a singleton client and one session per scope, typed bodies and states, cancellation; and opt-in retries
/// that carry a write through a shard outage under one MessageId.
/// </summary>
public sealed class ClientApiTests(TwoPostgresServers servers) : IClassFixture<TwoPostgresServers>
{
    private sealed record Order(string Customer, decimal Total, string? Note = null);

    [Fact]
    public async Task A_host_gets_a_client_from_membership_a_session_per_scope_and_typed_bodies_and_states()
    {
        var topology = servers.A.CreateTopology("client_api", 0, 1);
        await using var cluster = await TestClusters.StartWithAdoNetClusteringAsync(topology.Settings, silos: 1);
        var builder = Host.CreateApplicationBuilder();
        builder.AddPr2Client(options =>
        {
            options.Membership = topology.Settings["Pr2:Topology:Shards:0:Replicas:0"];
            options.ClusterId = cluster.Options.ClusterId;
            options.ServiceId = cluster.Options.ServiceId;
        });
        using var host = builder.Build();
        await host.StartAsync();
        try
        {
            var client = host.Services.GetRequiredService<IPr2Client>();
            Assert.Same(client, host.Services.GetRequiredService<Pr2Client>());
            using var first = host.Services.CreateScope();
            using var second = host.Services.CreateScope();
            var session = first.ServiceProvider.GetRequiredService<IPr2Session>();
            Assert.Same(session, first.ServiceProvider.GetRequiredService<IPr2Session>());
            var other = second.ServiceProvider.GetRequiredService<IPr2Session>();
            Assert.NotSame(session, other);

            // Typed: a C# object as the body, another as a patch (its null Note leaves the stored note alone).
            var id = $"order/{Guid.NewGuid():N}";
            var inserted = await session.InsertAsync(1, id, new Order("c-7", 10m, "rush"));
            await session.ModifyAsync(1, id, new Order("c-7", 12.5m), expectedVersion: inserted.Version);
            var read = await session.ReadRecordAsync<Order>(1, id);
            Assert.Equal((RecordStatus.Live, 2L, new Order("c-7", 12.5m, "rush")), (read.Status, read.Version, read.State));

            // Each session carries what it saw: the writing one a token covering its write, the other nothing yet.
            Assert.NotEqual(ReadToken.Empty.ToString(), session.SessionToken.ToString());
            Assert.Equal(ReadToken.Empty.ToString(), other.SessionToken.ToString());
            var missing = await other.ReadRecordAsync<Order>(1, $"order/{Guid.NewGuid():N}");
            Assert.Equal((RecordStatus.Missing, (Order?)null), (missing.Status, missing.State));

            // A cancelled wait is the caller's OperationCanceledException, not a PR2 error.
            using var cancelled = new CancellationTokenSource();
            await cancelled.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => session.CancelAsync(1, id, cancellationToken: cancelled.Token));
        }
        finally
        {
            await host.StopAsync();
        }
    }

    [Fact]
    public async Task With_retries_a_write_sent_while_its_shard_is_down_is_acknowledged_once_when_it_returns()
    {
        // Shard 1 alone on server B, which is stopped while the write is sent.
        var control = servers.A.CreateTopology("retry_control", 0);
        var shard = servers.B.CreateTopology("retry_shard", 1);
        var settings = new Dictionary<string, string?>(control.Settings)
        {
            ["Pr2:Topology:Shards:1:Replicas:0"] = shard.Settings["Pr2:Topology:Shards:1:Replicas:0"],
        };
        await using var cluster = await TestClusters.StartAsync(settings);
        var once = new Pr2Client(cluster.Client);
        var retrying = new Pr2Client(cluster.Client, new Pr2RetryOptions { MaxAttempts = 40, FirstDelay = TimeSpan.FromMilliseconds(100), MaxDelay = TimeSpan.FromMilliseconds(500) });
        await once.SendAsync(1, "acct/warm", MessageKind.Insert, "{}");

        NpgsqlConnection.ClearAllPools();
        await servers.B.Server.StopAsync("immediate");
        var restarted = false;
        try
        {
            var refused = await Assert.ThrowsAsync<Pr2Exception>(() => once.SendAsync(1, "acct/once", MessageKind.Insert, "{}"));
            Assert.True(refused.IsRetriable, $"{refused.Code} is not retriable");

            var sending = retrying.InsertAsync(1, "acct/retried", new { balance = 5 });
            await Task.Delay(TimeSpan.FromSeconds(2)); // the outage the retries must outlast: its length is what is tested
            Assert.False(sending.IsCompleted, sending.IsFaulted ? sending.Exception!.ToString() : "acknowledged while its shard's only server was down");
            await servers.B.Server.StartAgainAsync();
            restarted = true;

            var ack = await sending;
            Assert.False(ack.Duplicate, "the caller never sent this message before: its ack must not say duplicate");
            Assert.Equal(1, await shard.ScalarAsync(1, "select count(*) from pr2_journal where message_id = $1", ack.MessageId));
            Assert.Equal(1, await shard.ScalarAsync(1, "select count(*) from pr2_journal where actor_id = 'acct/retried'"));
        }
        finally
        {
            if (!restarted)
            {
                await servers.B.Server.StartAgainAsync();
            }
        }
    }
}
