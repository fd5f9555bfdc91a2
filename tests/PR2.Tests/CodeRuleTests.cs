using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using PR2.Client;
using PR2.Grains;
using PR2.Grains.Agents;
using PR2.Tests.Examples;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// Rules written in C# run on the same engine: canceling a customer cancels its open orders (a query the
/// expression language cannot say), once each, even when the rule crashes after every batch's effects.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class CodeRuleTests(PostgresFixture postgres)
{
    [Fact]
    public async Task Canceling_a_customer_cancels_its_open_orders_once_each_through_crashes()
    {
        var topology = postgres.CreateTopology("code_rules", 0, 1);
        var faults = new CrashEachBatchOnce("rule-cancel-customer-orders");
        await using var cluster = await TestClusters.StartAsync(topology.Settings, configureSilo: silo =>
        {
            silo.Services.AddPr2Rule<CancelOpenOrdersOfCanceledCustomer>();
            silo.Services.AddSingleton<IAgentFaultInjector>(faults);
        });
        var client = new Pr2Client(cluster.Client);
        foreach (var customer in new[] { "c1", "c2" })
        {
            await client.SendAsync(1, $"customer/{customer}", MessageKind.Insert, """{"name": "x"}""");
        }

        var ofC1 = Enumerable.Range(1, 5).Select(i => $"order/{i}").ToList();
        var ofC2 = new[] { "order/6", "order/7" };
        foreach (var order in ofC1)
        {
            await client.SendAsync(1, order, MessageKind.Insert, """{"customer": "c1", "total": 10}""");
        }

        foreach (var order in ofC2)
        {
            await client.SendAsync(1, order, MessageKind.Insert, """{"customer": "c2", "total": 10}""");
        }

        await client.SendAsync(1, "order/3", MessageKind.Cancel, "");
        await client.SendAsync(1, "customer/c1", MessageKind.Cancel, "");

        await Eventually.TrueAsync(async () =>
            (await Task.WhenAll(ofC1.Select(o => client.GetRecordAsync(1, o)))).All(r => r.Status == RecordStatus.Canceled),
            TimeSpan.FromSeconds(30), "every order of customer c1 canceled");
        Assert.True(faults.Crashes >= 1, "no crash was injected");
        // Nothing more comes: the rule has gone through the journal (a catch-up may meet one more injected crash) and the outbox is empty.
        await Eventually.TrueAsync(async () =>
        {
            try
            {
                return await client.CatchUpAsync("rule-cancel-customer-orders", 1) == await topology.ScalarAsync(1, "select max(position) from pr2_journal");
            }
            catch (InvalidOperationException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(30), "the rule caught up");
        await client.DeliverOutboxAsync(1);

        foreach (var order in ofC2)
        {
            Assert.Equal(RecordStatus.Live, (await client.GetRecordAsync(1, order)).Status);
        }

        // One cancel per order: order/3 only its own (it was no longer open), the others only the rule's.
        foreach (var order in ofC1)
        {
            Assert.Equal(1, await topology.ScalarAsync(1, "select count(*) from pr2_journal where actor_id = $1 and kind = 3", order));
        }

        var ruleCancel = (await client.ReadJournalAsync(1, 1, 1000)).Single(e => e.Actor.ActorId == "order/1" && e.Kind == MessageKind.Cancel);
        Assert.Equal("rule:cancel-customer-orders", ruleCancel.Sender);
        Assert.Equal("customer c1 was canceled", JsonNode.Parse(ruleCancel.Body)!["reason"]!.GetValue<string>());
        Assert.Equal(1, ruleCancel.Hops);
        Assert.Contains(ErrorCode.BadRule, new[] { (await Assert.ThrowsAsync<Pr2Exception>(() => client.PutRuleAsync("""
            {"name": "cancel-customer-orders", "on": {"type": "x"}, "do": [{"view": {"name": "v", "key": "k", "delete": true}}]}
            """))).Code });
    }
}
