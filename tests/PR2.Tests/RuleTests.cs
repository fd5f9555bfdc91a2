using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;
using PR2.Client;
using PR2.Grains.Agents;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// Event-condition-action rules on a real cluster: effects across shards happen once even when the rule
/// agent crashes on every batch and the relay delivers everything twice; backfill versus "now"; pause and
/// resume; a per-type daily totals view; parked entries retried after the rule is fixed.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class RuleTests(PostgresFixture postgres)
{
    // Example 1 of docs/rules.md: orders above 1,000 write an audit entry in shard 0.
    private const string BigOrders = """
        {
          "name": "big-orders",
          "on": {"type": "order", "kinds": ["insert"], "shards": [1, 2]},
          "when": "[body.total] > 1000",
          "do": [
            {"send": {"shard": 0, "actor": "audit/order-{entry.shard}-{entry.key}", "kind": "insert",
                      "body": {"order": "{entry.actor}", "shard": "{entry.shard}", "total": "{body.total}"}}}
          ],
          "start": "beginning"
        }
        """;

    [Fact]
    public async Task Cross_shard_effects_happen_exactly_once_when_the_rule_agent_crashes_every_batch_and_the_relay_delivers_twice()
    {
        var topology = postgres.CreateTopology("rules_once", 0, 1, 2);
        var faults = new CrashEachBatchOnce("rule-big-orders");
        await using var cluster = await StartAsync(topology, faults);
        var client = new Pr2Client(cluster.Client);
        await client.PutRuleAsync(BigOrders);

        var totals = Enumerable.Range(0, 60).ToDictionary(i => new ActorRef(1 + (i % 2), $"order/{i}"), i => 500 + (i * 37 % 1000));
        foreach (var wave in totals.Chunk(15))
        {
            await Task.WhenAll(wave.Select(o => client.SendAsync(o.Key.Shard, o.Key.ActorId, MessageKind.Insert, $$"""{"total": {{o.Value}}}""")));
        }

        var big = totals.Where(o => o.Value > 1000).ToList();
        Assert.NotEmpty(big);
        await Eventually.TrueAsync(async () => await topology.ScalarAsync(0, "select count(*) from pr2_journal where actor_id like 'audit/%'") == big.Count,
            TimeSpan.FromSeconds(30), $"{big.Count} audit entries in shard 0");
        Assert.True(faults.Crashes >= 2, $"only {faults.Crashes} injected crashes");

        // The relay's crash between sending and marking delivered, made visible: deliver everything again.
        foreach (var shard in new[] { 1, 2 })
        {
            await topology.ScalarAsync(shard, "with again as (update pr2_outbox set delivered_at = null returning 1) select count(*) from again");
            Assert.True(await client.DeliverOutboxAsync(shard) > 0);
        }

        Assert.Equal(big.Count, await topology.ScalarAsync(0, "select count(*) from pr2_journal where actor_id like 'audit/%'"));
        Assert.Equal(big.Count, await topology.ScalarAsync(0, "select count(distinct actor_id) from pr2_journal where actor_id like 'audit/%'"));
        foreach (var (order, total) in big)
        {
            var audit = await client.GetRecordAsync(0, $"audit/order-{order.Shard}-{order.Key}");
            Assert.Equal(RecordStatus.Live, audit.Status);
            var state = JsonNode.Parse(audit.State!)!;
            Assert.Equal((order.ActorId, total), (state["order"]!.GetValue<string>(), state["total"]!.GetValue<int>()));
        }

        // Causal order: each audit entry's stamp is after the order entry that caused it.
        Assert.Equal(0, await topology.ScalarAsync(0, """
            select count(*) from pr2_journal where actor_id like 'audit/%' and (caused_by_counter is null or lamport_counter <= caused_by_counter)
            """));
    }

    [Fact]
    public async Task A_rule_from_now_ignores_earlier_entries_and_a_backfilling_rule_sees_them_all()
    {
        var topology = postgres.CreateTopology("rules_start", 0, 1);
        await using var cluster = await StartAsync(topology);
        var client = new Pr2Client(cluster.Client);
        for (var i = 0; i < 5; i++)
        {
            await client.SendAsync(1, $"item/early{i}", MessageKind.Insert, """{"n": 1}""");
        }

        await client.PutRuleAsync(CountItems("count-from-now", "now"));
        await client.PutRuleAsync(CountItems("count-from-start", "beginning"));
        for (var i = 0; i < 3; i++)
        {
            await client.SendAsync(1, $"item/late{i}", MessageKind.Insert, """{"n": 1}""");
        }

        await Eventually.TrueAsync(async () => await CountAsync(client, "count-from-start") == 8 && await CountAsync(client, "count-from-now") == 3,
            TimeSpan.FromSeconds(30), "backfill counts 8 items, from-now counts 3");
    }

    [Fact]
    public async Task A_paused_rule_does_not_move_and_resumed_it_catches_up()
    {
        var topology = postgres.CreateTopology("rules_pause", 0, 1);
        await using var cluster = await StartAsync(topology);
        var client = new Pr2Client(cluster.Client);
        await client.PutRuleAsync(CountItems("counter", "now"));
        await client.SendAsync(1, "item/a", MessageKind.Insert, """{"n": 1}""");
        await Eventually.TrueAsync(async () => await CountAsync(client, "counter") == 1, TimeSpan.FromSeconds(30), "one item counted");

        var paused = await client.PauseRuleAsync("counter");
        Assert.True(paused.Paused);
        var markBefore = await client.CatchUpAsync("rule-counter", 1);
        for (var i = 0; i < 4; i++)
        {
            await client.SendAsync(1, $"item/p{i}", MessageKind.Insert, """{"n": 1}""");
        }

        Assert.Equal(markBefore, await client.CatchUpAsync("rule-counter", 1));
        Assert.Equal(1, await CountAsync(client, "counter"));

        // Status (and the pr2.agent.lag / pr2.agent.delay gauges) shows how far behind it is, in entries and in time.
        async Task<AgentProgress> ProgressAsync() =>
            (await client.GetStatusAsync()).Shards.Single(s => s.Shard == 1).Agents.Single(a => a.Agent == "rule-counter");
        await Eventually.TrueAsync(async () => await ProgressAsync() is { Lag: 4, LagSeconds: >= 1 }, TimeSpan.FromSeconds(30),
            "the paused rule shown 4 entries and at least a second behind");

        await client.ResumeRuleAsync("counter");
        await Eventually.TrueAsync(async () => await CountAsync(client, "counter") == 5, TimeSpan.FromSeconds(30), "the resumed rule counted the rest");
        await Eventually.TrueAsync(async () => await ProgressAsync() is { Lag: 0, LagSeconds: 0 }, TimeSpan.FromSeconds(30), "the resumed rule shown caught up");
        Assert.Equal(3, (await client.GetRuleAsync("counter")).Version);
    }

    [Fact]
    public async Task The_daily_totals_view_adds_up_every_order_by_type_and_day_exactly_once_through_crashes()
    {
        // Adding is not idempotent: crashing the rule after every batch's effects would show any double application.
        var topology = postgres.CreateTopology("rules_totals", 0, 1);
        var faults = new CrashEachBatchOnce("rule-daily-totals");
        await using var cluster = await StartAsync(topology, faults);
        var client = new Pr2Client(cluster.Client);
        await client.PutRuleAsync("""
            {
              "name": "daily-totals",
              "on": {"type": "*", "kinds": ["insert"]},
              "when": "[body.total] != null",
              "do": [{"view": {"name": "daily_totals", "key": "{entry.type}/{entry.day}", "add": {"count": 1, "total": "{body.total}"}}}]
            }
            """);
        var sent = new List<(string Type, decimal Total)>();
        for (var i = 0; i < 12; i++)
        {
            var type = i % 3 == 0 ? "refund" : "order";
            var total = 10.5m + i;
            await client.SendAsync(1, $"{type}/{i}", MessageKind.Insert, $$"""{"total": {{total}}}""");
            sent.Add((type, total));
        }

        await client.SendAsync(1, "note/1", MessageKind.Insert, """{"text": "no total: the condition is false"}""");
        await Eventually.TrueAsync(async () => (await client.QueryViewAsync(1, "daily_totals")).Sum(d => JsonNode.Parse(d.Doc)!["count"]!.GetValue<decimal>()) == 12,
            TimeSpan.FromSeconds(30), "12 orders and refunds counted");
        var documents = await client.QueryViewAsync(1, "daily_totals");
        foreach (var group in sent.GroupBy(s => s.Type))
        {
            var doc = JsonNode.Parse(Assert.Single(documents, d => d.Key.StartsWith(group.Key + "/", StringComparison.Ordinal)).Doc)!;
            Assert.Equal(group.Count(), doc["count"]!.GetValue<decimal>());
            Assert.Equal(group.Sum(s => s.Total), doc["total"]!.GetValue<decimal>());
        }

        Assert.DoesNotContain(documents, d => d.Key.StartsWith("note/", StringComparison.Ordinal));
        Assert.True(faults.Crashes >= 1, "no crash was injected");
    }

    [Fact]
    public async Task Entries_a_rule_cannot_handle_are_parked_and_run_again_once_the_rule_is_fixed()
    {
        var topology = postgres.CreateTopology("rules_parked", 0, 1);
        await using var cluster = await StartAsync(topology);
        var client = new Pr2Client(cluster.Client);
        // The actor id comes from a body member that these entries lack: an invalid actor id, so each is parked.
        await client.PutRuleAsync(Forward("{body.target}"));
        for (var i = 0; i < 3; i++)
        {
            await client.SendAsync(1, $"ticket/{i}", MessageKind.Insert, $$"""{"ticket": {{i}}}""");
        }

        await Eventually.TrueAsync(async () => (await client.GetParkedAsync("forward")).Count == 3, TimeSpan.FromSeconds(30), "three entries parked");
        Assert.All(await client.GetParkedAsync("forward"), p => Assert.Contains("send.actor", p.Reason, StringComparison.Ordinal));
        Assert.Equal(0, await topology.ScalarAsync(1, "select count(*) from pr2_journal where actor_id like 'copy/%'"));
        Assert.Equal(3, (await client.GetStatusAsync()).Shards.Single(s => s.Shard == 1).Replicas.Single().Parked);

        await client.PutRuleAsync(Forward("copy/{entry.key}"));
        Assert.Equal(3, await client.RetryParkedAsync("forward"));
        await Eventually.TrueAsync(async () => await topology.ScalarAsync(1, "select count(*) from pr2_journal where actor_id like 'copy/%'") == 3,
            TimeSpan.FromSeconds(30), "the three parked entries forwarded after the fix");
        Assert.Empty(await client.GetParkedAsync("forward"));
        await Eventually.TrueAsync(async () => (await client.GetStatusAsync()).Shards.Single(s => s.Shard == 1).Replicas.Single() is { Parked: 0, OutboxPending: 0 },
            TimeSpan.FromSeconds(30), "status shows nothing parked and the outbox delivered");
    }

    [Fact]
    public async Task A_rule_that_would_write_the_shard_map_or_another_rule_parks_its_entries_and_writes_nothing()
    {
        var topology = postgres.CreateTopology("rules_reserved", 0, 1);
        await using var cluster = await StartAsync(topology);
        var client = new Pr2Client(cluster.Client);
        // Hostile or careless: the template renders PR2's own actors in shard 0 (a shard record, a rule).
        await client.PutRuleAsync("""
            {
              "name": "forward",
              "on": {"type": "ticket"},
              "do": [{"send": {"shard": 0, "actor": "{body.target}", "kind": "insert", "body": {"primary": 0, "replicas": ["evil:5432/x"]}}}]
            }
            """);
        var shardsBefore = (await client.GetShardsAsync()).Select(s => s.Shard).ToList();
        await client.SendAsync(1, "ticket/1", MessageKind.Insert, """{"target": "shard/9"}""");
        await client.SendAsync(1, "ticket/2", MessageKind.Insert, """{"target": "rule/injected"}""");

        await Eventually.TrueAsync(async () => (await client.GetParkedAsync("forward")).Count == 2, TimeSpan.FromSeconds(30), "both entries parked");
        Assert.All(await client.GetParkedAsync("forward"), p => Assert.Contains("PR2's own", p.Reason, StringComparison.Ordinal));
        Assert.Equal(0, await topology.ScalarAsync(0, "select count(*) from pr2_journal where actor_id in ('shard/9', 'rule/injected')"));
        Assert.Equal(shardsBefore, (await client.GetShardsAsync()).Select(s => s.Shard).ToList());
        Assert.DoesNotContain("injected", (await client.GetRulesAsync()).Select(r => r.Name));
    }

    [Fact]
    public async Task Rules_are_listed_shown_and_removed_and_bad_ones_are_refused_with_the_place_and_the_reason()
    {
        var topology = postgres.CreateTopology("rules_manage", 0, 1, 2);
        await using var cluster = await StartAsync(topology);
        var client = new Pr2Client(cluster.Client);

        var refused = await Assert.ThrowsAsync<Pr2Exception>(() => client.PutRuleAsync("""
            {"name": "Bad Name", "on": {"type": "order", "shards": [9]}, "when": "[body.total] >", "do": [{"send": {"shard": 0, "actor": "audit/{entry.nope}", "kind": "upsert"}}]}
            """));
        Assert.Equal(ErrorCode.BadRule, refused.Code);
        foreach (var expected in new[] { "$.name:", "$.on.shards[0]: 9 is not a configured shard", "$.when:", "$.do[0].send.actor: {entry.nope}", "$.do[0].send.kind:" })
        {
            Assert.Contains(expected, refused.Message, StringComparison.Ordinal);
        }

        await client.PutRuleAsync(BigOrders);
        await client.PutRuleAsync(CountItems("counter", "now"));
        Assert.Equal(["big-orders", "counter"], (await client.GetRulesAsync()).Select(r => r.Name));
        var shown = await client.GetRuleAsync("big-orders");
        Assert.Equal(1, shown.Version);
        Assert.Equal("[body.total] > 1000", JsonNode.Parse(shown.Definition)!["when"]!.GetValue<string>());

        // Replacing keeps the name and makes a new version; removing frees the name.
        var replaced = await client.PutRuleAsync(BigOrders.Replace("> 1000", "> 2000", StringComparison.Ordinal));
        Assert.Equal(2, replaced.Version);
        await client.RemoveRuleAsync("big-orders");
        Assert.Equal(["counter"], (await client.GetRulesAsync()).Select(r => r.Name));
        Assert.Equal(ErrorCode.UnknownRule, (await Assert.ThrowsAsync<Pr2Exception>(() => client.GetRuleAsync("big-orders"))).Code);
        Assert.Equal(4, (await client.PutRuleAsync(BigOrders)).Version);
    }

    [Fact]
    public async Task A_message_its_receiver_refuses_is_listed_and_delivered_on_retry_once_the_receiver_can_take_it()
    {
        var topology = postgres.CreateTopology("rules_refused", 0, 1);
        await using var cluster = await StartAsync(topology);
        var client = new Pr2Client(cluster.Client);
        await client.PutRuleAsync("""
            {
              "name": "enqueue",
              "on": {"type": "ticket", "kinds": ["insert"]},
              "do": [{"send": {"shard": 1, "actor": "queue/{body.queue}", "kind": "modify", "body": {"last": "{entry.key}"}}}]
            }
            """);
        await client.SendAsync(1, "ticket/1", MessageKind.Insert, """{"queue": "support"}""");

        // queue/support does not exist yet: the modify is refused, kept on the outbox row and listed.
        await Eventually.TrueAsync(async () => (await client.GetParkedAsync("enqueue")).Count == 1, TimeSpan.FromSeconds(30), "the refused delivery is listed");
        Assert.Contains("RecordMissing", Assert.Single(await client.GetParkedAsync("enqueue")).Reason, StringComparison.Ordinal);

        await client.SendAsync(1, "queue/support", MessageKind.Insert, "{}");
        Assert.Equal(1, await client.RetryParkedAsync("enqueue"));
        await Eventually.TrueAsync(async () => (await client.GetRecordAsync(1, "queue/support")).Version == 2, TimeSpan.FromSeconds(30), "the retried message delivered");
        Assert.Empty(await client.GetParkedAsync("enqueue"));
        Assert.Equal("1", JsonNode.Parse((await client.GetRecordAsync(1, "queue/support")).State!)!["last"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_rule_chain_that_loops_stops_at_the_hop_limit()
    {
        var topology = postgres.CreateTopology("rules_hops", 0, 1);
        await using var cluster = await StartAsync(topology);
        var client = new Pr2Client(cluster.Client);
        // Each echo inserts another echo: without a limit this would never end.
        await client.PutRuleAsync("""
            {
              "name": "echo",
              "on": {"type": "echo", "kinds": ["insert"]},
              "do": [{"send": {"shard": 1, "actor": "echo/{entry.key}-{entry.hops}", "kind": "insert", "body": {"hops": "{entry.hops}"}}}]
            }
            """);
        await client.SendAsync(1, "echo/a", MessageKind.Insert, "{}");

        var limit = Grains.Rules.RuleAgent.MaxHops;
        await Eventually.TrueAsync(async () => (await client.GetParkedAsync("echo")).Count == 1, TimeSpan.FromSeconds(60), "the chain parked at the hop limit");
        var parked = Assert.Single(await client.GetParkedAsync("echo"));
        Assert.Contains("hop limit", parked.Reason, StringComparison.Ordinal);

        // Caught up and delivered: nothing more comes. The first echo plus one per hop up to the limit.
        await client.CatchUpAsync("rule-echo", 1);
        await client.DeliverOutboxAsync(1);
        Assert.Equal(limit + 1, await topology.ScalarAsync(1, "select count(*) from pr2_journal where actor_id like 'echo/%'"));
        Assert.Equal(limit, await topology.ScalarAsync(1, "select max(hops) from pr2_journal"));
        Assert.Equal(parked.Position, await topology.ScalarAsync(1, "select position from pr2_journal where hops = $1", limit));
    }

    [Fact]
    public async Task A_halting_rule_stops_at_the_entry_it_cannot_handle_and_goes_on_once_replaced()
    {
        var topology = postgres.CreateTopology("rules_halt", 0, 1);
        await using var cluster = await StartAsync(topology);
        var client = new Pr2Client(cluster.Client);
        const string Halting = """
            {
              "name": "totals",
              "on": {"type": "sale", "kinds": ["insert"]},
              "do": [{"view": {"name": "sales", "key": "all", "add": {"amount": "AMOUNT"}}}],
              "onError": "halt"
            }
            """;
        await client.PutRuleAsync(Halting.Replace("AMOUNT", "{body.amount}", StringComparison.Ordinal));
        // Paused while the sales are written, so that all three reach the rule in one batch.
        await client.PauseRuleAsync("totals");
        await client.SendAsync(1, "sale/1", MessageKind.Insert, """{"amount": 5}""");
        await client.SendAsync(1, "sale/2", MessageKind.Insert, """{"amount": "five"}""");
        await client.SendAsync(1, "sale/3", MessageKind.Insert, """{"amount": 7}""");
        await client.ResumeRuleAsync("totals");

        // The rule applies sale/1 (the batch's entries before the halt are kept), then stops at sale/2 (a text is
        // not a number to add) and never reaches sale/3.
        await Eventually.TrueAsync(async () => await AmountAsync(client) == 5, TimeSpan.FromSeconds(30), "sale/1 added");
        var stuck = (await client.GetStatusAsync()).Shards.Single(s => s.Shard == 1).Agents.Single(a => a.Agent == "rule-totals");
        Assert.Equal(await topology.ScalarAsync(1, "select position from pr2_journal where actor_id = 'sale/2'") - 1, stuck.Mark);
        Assert.Empty(await client.GetParkedAsync("totals"));

        // Replaced so that a text counts as 0: it goes on from where it stopped.
        await client.PutRuleAsync(Halting.Replace("AMOUNT", "{body.amount}", StringComparison.Ordinal).Replace("\"add\"", "\"merge\"", StringComparison.Ordinal)
            .Replace("\"amount\": \"{body.amount}\"", "\"last\": \"{entry.key}\"", StringComparison.Ordinal));
        await Eventually.TrueAsync(async () =>
            (await client.QueryViewAsync(1, "sales")).SingleOrDefault() is { } doc && JsonNode.Parse(doc.Doc)!["last"]?.GetValue<string>() == "3",
            TimeSpan.FromSeconds(30), "the replaced rule went on through sale/2 and sale/3");
        Assert.Equal(5, await AmountAsync(client));
    }

    private static async Task<decimal> AmountAsync(Pr2Client client) =>
        (await client.QueryViewAsync(1, "sales")).SingleOrDefault() is { } doc && JsonNode.Parse(doc.Doc)!["amount"] is { } amount
            ? amount.GetValue<decimal>()
            : 0;

    private static string CountItems(string name, string start) => """
        {
          "name": "NAME",
          "on": {"type": "item", "kinds": ["insert"]},
          "do": [{"view": {"name": "counts", "key": "NAME", "add": {"items": "{body.n}"}}}],
          "start": "START"
        }
        """.Replace("NAME", name, StringComparison.Ordinal).Replace("START", start, StringComparison.Ordinal);

    private static string Forward(string actor) => """
        {
          "name": "forward",
          "on": {"type": "ticket"},
          "do": [{"send": {"shard": 1, "actor": "ACTOR", "kind": "insert", "body": {"from": "{entry.actor}"}}}]
        }
        """.Replace("ACTOR", actor, StringComparison.Ordinal);

    private static async Task<decimal> CountAsync(Pr2Client client, string rule) =>
        (await client.QueryViewAsync(1, "counts", rule)).SingleOrDefault(d => d.Key == rule) is { } doc
            ? JsonNode.Parse(doc.Doc)!["items"]!.GetValue<decimal>()
            : 0;

    private static Task<InProcessTestCluster> StartAsync(TestTopology topology, IAgentFaultInjector? faults = null) =>
        TestClusters.StartAsync(topology.Settings, configureSilo: silo =>
        {
            if (faults is not null)
            {
                silo.Services.AddSingleton(faults);
            }
        });
}
