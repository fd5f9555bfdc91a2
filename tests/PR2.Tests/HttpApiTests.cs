using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Claims;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using PR2.Silo.Http;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// The HTTP/JSON API end to end through a real Kestrel server on loopback and a real silo: per-shard
/// authorization by API key and JWT (401 without or with bad credentials, 403 for another company's shard),
/// problem details with the Orleans error codes (400 bad JSON, 404 unknown shard, 409 conflicts), session reads
/// through the read-token header, the OpenAPI document, and live changes over Server-Sent Events.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class HttpApiTests(PostgresFixture postgres)
{
    private const string AcmeKey = "acme-key-0123456789";
    private const string OpsKey = "ops-key-0123456789";
    private const string SigningKey = "test-signing-key-of-at-least-32-characters";

    [Fact]
    public async Task Messages_reads_and_queries_over_http_with_per_shard_keys_and_problem_details()
    {
        await using var silo = await HttpSilo.StartAsync(Settings("http_api"));
        using var anonymous = silo.Client();
        using var acme = silo.Client(AcmeKey);
        using var ops = silo.Client(OpsKey);

        // Authentication: none or an unknown key is 401, as problem details.
        var none = await anonymous.GetAsync("/v1/shards/1/actors/order/1");
        Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
        Assert.Equal("application/problem+json", none.Content.Headers.ContentType?.MediaType);
        using (var wrong = silo.Client("not-a-key-0123456789"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await wrong.GetAsync("/v1/shards/1/actors/order/1")).StatusCode);
        }

        // A write, then reading it back in the same session (the token travels in a header).
        var sent = await acme.PostAsync("/v1/shards/1/actors/order/1/messages", Json("""{"kind": "insert", "body": {"customer": "c-7", "total": 10}}"""));
        Assert.Equal(HttpStatusCode.OK, sent.StatusCode);
        var ack = await Body(sent);
        Assert.Equal(("order/1", 1L, "http:acme"), (ack["actor"]!.GetValue<string>(), ack["version"]!.GetValue<long>(), await SenderAsync(ops, ack)));
        var token = sent.Headers.GetValues(HttpApiEndpoints.ReadTokenHeader).Single();

        var modifyRequest = new HttpRequestMessage(HttpMethod.Post, "/v1/shards/1/actors/order/1/messages") { Content = Json("""{"kind": "modify", "body": {"total": 12}, "expectedVersion": 1}""") };
        modifyRequest.Headers.Add(HttpApiEndpoints.ReadTokenHeader, token);
        var modify = await acme.SendAsync(modifyRequest);
        token = modify.Headers.GetValues(HttpApiEndpoints.ReadTokenHeader).Single();
        var read = await acme.SendAsync(Get("/v1/shards/1/actors/order/1", token));
        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        var record = (await Body(read))["record"]!;
        Assert.Equal((2L, 12, "c-7"), (record["version"]!.GetValue<long>(), record["state"]!["total"]!.GetValue<int>(), record["state"]!["customer"]!.GetValue<string>()));

        // As of the first write's stamp; a query by containment; the journal.
        var then = await Body(await acme.GetAsync($"/v1/shards/1/actors/order/1?asOf={ack["stamp"]!.GetValue<string>()}"));
        Assert.Equal(10, then["record"]!["state"]!["total"]!.GetValue<int>());
        var page = await Body(await acme.GetAsync("/v1/shards/1/records/order?consistency=strong&contains=" + Uri.EscapeDataString("""{"customer": "c-7"}""")));
        Assert.Equal(["order/1"], page["records"]!.AsArray().Select(r => r!["actor"]!.GetValue<string>()));
        var journal = (await Body(await acme.GetAsync("/v1/shards/1/journal?from=1&limit=10"))).AsArray();
        Assert.Equal(["insert", "modify"], journal.Select(e => e!["kind"]!.GetValue<string>()));

        // Per-shard authorization: acme's key is for shard 1 only; cluster-wide endpoints need "*".
        await AssertProblemAsync(await acme.GetAsync("/v1/shards/2/actors/order/1"), HttpStatusCode.Forbidden, "Forbidden");
        await AssertProblemAsync(await acme.PostAsync("/v1/shards/2/actors/order/1/messages", Json("""{"kind": "insert", "body": {}}""")), HttpStatusCode.Forbidden, "Forbidden");
        await AssertProblemAsync(await acme.GetAsync("/v1/status"), HttpStatusCode.Forbidden, "Forbidden");
        Assert.Equal(HttpStatusCode.OK, (await ops.GetAsync("/v1/status")).StatusCode);

        // The shard map and what a shard is: cluster-wide keys only, changed by a merge patch.
        await AssertProblemAsync(await acme.PatchAsync("/v1/shards/1", Json("""{"name": "Acme Ltd"}""")), HttpStatusCode.Forbidden, "Forbidden");
        var named = await Body(await ops.PatchAsync("/v1/shards/1", Json("""{"name": "Acme Ltd", "labels": {"region": "eu-west"}}""")));
        Assert.Equal(("Acme Ltd", "eu-west"), (named["name"]!.GetValue<string>(), named["labels"]!["region"]!.GetValue<string>()));
        var listed = (await Body(await ops.GetAsync("/v1/shards"))).AsArray();
        Assert.Equal("Acme Ltd", listed.Single(x => x!["shard"]!.GetValue<int>() == 1)!["name"]!.GetValue<string>());
        var one = await Body(await ops.GetAsync("/v1/shards/1"));
        Assert.Equal(("Acme Ltd", 1), (one["shard"]!["name"]!.GetValue<string>(), one["status"]!["shard"]!.GetValue<int>()));
        await AssertProblemAsync(await ops.PatchAsync("/v1/shards/1", Json("""{"labels": {"bad key": "x"}}""")), HttpStatusCode.BadRequest, "BadMessage");
        await AssertProblemAsync(await ops.GetAsync("/v1/shards/9"), HttpStatusCode.NotFound, "UnknownShard");

        // Adding a shard is cluster-wide; a key the silo does not have, or a password where a key belongs, is refused first.
        await AssertProblemAsync(await acme.PostAsync("/v1/shards", Json("""{"shard": 9, "connections": ["Pr2:Connections:a"]}""")),
            HttpStatusCode.Forbidden, "Forbidden");
        await AssertProblemAsync(await ops.PostAsync("/v1/shards", Json("""{"shard": 9, "connections": ["Pr2:Connections:nowhere"]}""")),
            HttpStatusCode.BadRequest, "BadMessage");
        await AssertProblemAsync(await ops.PostAsync("/v1/shards", Json("""{"shard": 9, "connections": ["Host=db;Password=secret"]}""")),
            HttpStatusCode.BadRequest, "BadMessage");
        await AssertProblemAsync(await ops.PostAsync("/v1/shards", Json("""{"shard": 1, "connections": ["Pr2:Connections:a"]}""")),
            HttpStatusCode.Conflict, "RecordExists");

        // Moving a primary is cluster-wide too; a replica the shard does not have is a bad request, the current one a no-op.
        await AssertProblemAsync(await acme.PostAsync("/v1/shards/1/primary", Json("""{"replica": 0}""")), HttpStatusCode.Forbidden, "Forbidden");
        await AssertProblemAsync(await ops.PostAsync("/v1/shards/1/primary", Json("""{"replica": 7}""")), HttpStatusCode.BadRequest, "BadMessage");
        await AssertProblemAsync(await ops.PostAsync("/v1/shards/1/primary", Json("{}")), HttpStatusCode.BadRequest, "BadMessage");
        var moved = await Body(await ops.PostAsync("/v1/shards/1/primary", Json("""{"replica": 0}""")));
        Assert.Equal((1, 0), (moved["shard"]!.GetValue<int>(), moved["primary"]!.GetValue<int>()));

        // Adding a replica is cluster-wide: refused as bad input without a key, with a password where the key belongs, or
        // for shard 0; accepted (202) once recorded joining, and it serves (no longer joining) when caught up.
        await AssertProblemAsync(await acme.PostAsync("/v1/shards/1/replicas", Json("""{"connection": "Pr2:Connections:a"}""")), HttpStatusCode.Forbidden, "Forbidden");
        await AssertProblemAsync(await ops.PostAsync("/v1/shards/1/replicas", Json("{}")), HttpStatusCode.BadRequest, "BadMessage");
        var secret = await AssertProblemAsync(await ops.PostAsync("/v1/shards/1/replicas", Json("""{"connection": "Host=db;Password=secret"}""")), HttpStatusCode.BadRequest, "BadMessage");
        Assert.DoesNotContain("secret", secret["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        await AssertProblemAsync(await ops.PostAsync("/v1/shards/0/replicas", Json("""{"connection": "Pr2:Connections:a"}""")), HttpStatusCode.BadRequest, "BadMessage");
        var accepted = await ops.PostAsync("/v1/shards/1/replicas", Json("""{"connection": "Pr2:Connections:a"}"""));
        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        var joining = await Body(accepted);
        Assert.Equal(2, joining["replicas"]!.AsArray().Count);
        await Eventually.TrueAsync(async () => (await Body(await ops.GetAsync("/v1/shards/1")))["shard"]!["joining"] is null,
            TimeSpan.FromSeconds(30), "the added replica of shard 1 serves");

        // Rebuilding the records view is cluster-wide: 202 once started on every replica, then followed until each is done.
        await AssertProblemAsync(await acme.PostAsync("/v1/shards/1/projections/records/rebuild", null), HttpStatusCode.Forbidden, "Forbidden");
        await AssertProblemAsync(await ops.PostAsync("/v1/shards/1/projections/object-directory/rebuild", null), HttpStatusCode.BadRequest, "BadMessage");
        var rebuild = await ops.PostAsync("/v1/shards/1/projections/records/rebuild", null);
        Assert.Equal(HttpStatusCode.Accepted, rebuild.StatusCode);
        var generation = (await Body(rebuild))["replicas"]![0]!["generation"]!.GetValue<long>();
        await Eventually.TrueAsync(async () => (await Body(await ops.GetAsync("/v1/shards/1/projections/records")))["replicas"]!.AsArray()
            .All(r => r!["state"]!.GetValue<string>() == "done" && r["generation"]!.GetValue<long>() == generation),
            TimeSpan.FromSeconds(30), "the records view of shard 1 rebuilt on every replica");
        await AssertProblemAsync(await acme.DeleteAsync("/v1/shards/1/projections/records/rebuild"), HttpStatusCode.Forbidden, "Forbidden");
        var nothingToCancel = await ops.DeleteAsync("/v1/shards/1/projections/records/rebuild");
        Assert.Equal(HttpStatusCode.OK, nothingToCancel.StatusCode);
        Assert.All((await Body(nothingToCancel))["replicas"]!.AsArray(), r => Assert.Equal("done", r!["state"]!.GetValue<string>()));
        var projections = (await Body(await ops.GetAsync("/v1/shards/1/projections"))).AsArray();
        Assert.Contains(projections, p => p!["projection"]!.GetValue<string>() == "records" && p["rebuildable"]!.GetValue<bool>());
        var directory = await Body(await ops.GetAsync("/v1/shards/1/projections/object-directory"));
        Assert.False(directory["rebuildable"]!.GetValue<bool>());
        Assert.All(directory["replicas"]!.AsArray(), r => Assert.Equal("live", r!["state"]!.GetValue<string>()));
        await AssertProblemAsync(await ops.GetAsync("/v1/shards/1/projections/nope"), HttpStatusCode.BadRequest, "BadMessage");

        // Refusals carry the same codes as over Orleans.
        var badJson = await AssertProblemAsync(await acme.PostAsync("/v1/shards/1/actors/order/2/messages", Json("""{"kind": "insert", "body": {"total": 1}""")), HttpStatusCode.BadRequest, "BadBody");
        Assert.Contains("not valid JSON", badJson["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        await AssertProblemAsync(await acme.PostAsync("/v1/shards/1/actors/order/2/messages", Json("""{"kind": "upsert", "body": {}}""")), HttpStatusCode.BadRequest, "BadMessage");
        await AssertProblemAsync(await acme.PostAsync("/v1/shards/1/actors/order/2/messages", Json("""{"kind": "insert", "body": [1, 2]}""")), HttpStatusCode.BadRequest, "BadBody");
        await AssertProblemAsync(await acme.PostAsync("/v1/shards/1/actors/Order!/2/messages", Json("""{"kind": "insert", "body": {}}""")), HttpStatusCode.BadRequest, "BadActorId");
        await AssertProblemAsync(await acme.PostAsync("/v1/shards/1/actors/order/1/messages", Json("""{"kind": "insert", "body": {}}""")), HttpStatusCode.Conflict, "RecordExists");
        await AssertProblemAsync(await acme.PostAsync("/v1/shards/1/actors/order/1/messages", Json("""{"kind": "modify", "body": {}, "expectedVersion": 1}""")), HttpStatusCode.Conflict, "VersionMismatch");
        await AssertProblemAsync(await acme.GetAsync("/v1/shards/1/actors/order/404"), HttpStatusCode.NotFound, "RecordMissing");
        await AssertProblemAsync(await acme.GetAsync("/v1/shards/1/actors/order/1?consistency=sometimes"), HttpStatusCode.BadRequest, "BadMessage");
        await AssertProblemAsync(await ops.GetAsync("/v1/shards/9/actors/order/1"), HttpStatusCode.NotFound, "UnknownShard");
        await AssertProblemAsync(await ops.GetAsync("/v1/rules/nope"), HttpStatusCode.NotFound, "UnknownRule");
        var garbled = new HttpRequestMessage(HttpMethod.Get, "/v1/shards/1/actors/order/1");
        garbled.Headers.Add(HttpApiEndpoints.ReadTokenHeader, "garbage!");
        await AssertProblemAsync(await acme.SendAsync(garbled), HttpStatusCode.BadRequest, "BadMessage");

        // Bodies: over the message limit (256 KiB) refused by the actor; far over it refused before it is read.
        var big = new string('x', 300 * 1024);
        await AssertProblemAsync(await acme.PostAsync("/v1/shards/1/actors/order/9/messages", Json($$$"""{"kind": "insert", "body": {"x": "{{{big}}}"}}""")), HttpStatusCode.RequestEntityTooLarge, "BodyTooLarge");
        var huge = new string('x', 2 * 1024 * 1024);
        var tooHuge = await AssertProblemAsync(await acme.PostAsync("/v1/shards/1/actors/order/9/messages", Json($$$"""{"kind": "insert", "body": {"x": "{{{huge}}}"}}""")), HttpStatusCode.RequestEntityTooLarge, "BodyTooLarge");
        Assert.Contains("larger than this API accepts", tooHuge["detail"]!.GetValue<string>(), StringComparison.Ordinal);

        // The same MessageId again is the first acknowledgement, marked duplicate.
        var id = Guid.NewGuid();
        var first = await Body(await acme.PostAsync("/v1/shards/1/actors/order/3/messages", Json($$"""{"kind": "insert", "body": {}, "messageId": "{{id}}"}""")));
        var again = await Body(await acme.PostAsync("/v1/shards/1/actors/order/3/messages", Json($$"""{"kind": "insert", "body": {}, "messageId": "{{id}}"}""")));
        Assert.Equal((first["position"]!.GetValue<long>(), true), (again["position"]!.GetValue<long>(), again["duplicate"]!.GetValue<bool>()));

        // An atomic batch: one acknowledgement for all, in order; a refused one lists every refused message.
        var batchIds = new[] { Guid.NewGuid(), Guid.NewGuid() };
        var batchJson = $$"""{"messages": [{"actor": "order/b1", "kind": "insert", "body": {"n": 1}, "messageId": "{{batchIds[0]}}"}, {"actor": "order/b1", "kind": "modify", "body": {"n": 2}, "expectedVersion": 1, "messageId": "{{batchIds[1]}}"}]}""";
        var batch = await Body(await acme.PostAsync("/v1/shards/1/batches", Json(batchJson)));
        Assert.Equal([1L, 2L], batch["acks"]!.AsArray().Select(a => a!["version"]!.GetValue<long>()));
        Assert.Equal(batch["acks"]![0]!["position"]!.GetValue<long>() + 1, batch["acks"]![1]!["position"]!.GetValue<long>());
        Assert.Equal("http:acme", await SenderAsync(ops, batch["acks"]![1]!));
        Assert.True((await Body(await acme.PostAsync("/v1/shards/1/batches", Json(batchJson))))["duplicate"]!.GetValue<bool>());
        var refusedBatch = await AssertProblemAsync(await acme.PostAsync("/v1/shards/1/batches",
            Json("""{"messages": [{"actor": "order/b2", "kind": "insert", "body": {}}, {"actor": "order/b1", "kind": "insert", "body": {}}, {"actor": "order/b3", "kind": "modify", "body": {}}]}""")),
            HttpStatusCode.Conflict, "BatchRefused");
        Assert.Equal([(1, "RecordExists"), (2, "RecordMissing")],
            refusedBatch["refusals"]!.AsArray().Select(r => (r!["index"]!.GetValue<int>(), r["code"]!.GetValue<string>())));
        await AssertProblemAsync(await acme.GetAsync("/v1/shards/1/actors/order/b2"), HttpStatusCode.NotFound, "RecordMissing");
        await AssertProblemAsync(await acme.PostAsync("/v1/shards/1/batches", Json("""{"messages": [{"actor": "order/b4", "kind": "insert", "body": [1]}]}""")),
            HttpStatusCode.BadRequest, "BatchRefused");
        await AssertProblemAsync(await acme.PostAsync("/v1/shards/2/batches", Json("""{"messages": []}""")), HttpStatusCode.Forbidden, "Forbidden");

        // Rules over HTTP (cluster-wide: the ops key): add, list, pause, resume, remove; a bad rule is a 400 with its JSON path.
        var rule = """{"name": "audit-orders", "on": {"type": "order", "kinds": ["insert"]}, "do": [{"view": {"name": "seen", "key": "{entry.key}", "set": {"n": 1}}}]}""";
        await AssertProblemAsync(await acme.PutAsync("/v1/rules", Json(rule)), HttpStatusCode.Forbidden, "Forbidden");
        Assert.Equal(1, (await Body(await ops.PutAsync("/v1/rules", Json(rule))))["version"]!.GetValue<int>());
        Assert.Equal(HttpStatusCode.OK, (await acme.PostAsync("/v1/shards/1/actors/order/seen1/messages", Json("""{"kind": "insert", "body": {}}"""))).StatusCode);
        await Eventually.TrueAsync(async () => (await Body(await acme.GetAsync("/v1/shards/1/views/seen?prefix=seen"))).AsArray().Count == 1,
            TimeSpan.FromSeconds(30), "the rule's view document is served");
        Assert.Equal(1, (await Body(await acme.GetAsync("/v1/shards/1/views/seen?prefix=seen")))[0]!["doc"]!["n"]!.GetValue<int>());
        Assert.Equal(["audit-orders"], (await Body(await ops.GetAsync("/v1/rules"))).AsArray().Select(r => r!["name"]!.GetValue<string>()));
        Assert.True((await Body(await ops.PostAsync("/v1/rules/audit-orders/pause", null)))["paused"]!.GetValue<bool>());
        Assert.False((await Body(await ops.PostAsync("/v1/rules/audit-orders/resume", null)))["paused"]!.GetValue<bool>());
        Assert.Equal(HttpStatusCode.NoContent, (await ops.DeleteAsync("/v1/rules/audit-orders")).StatusCode);
        await AssertProblemAsync(await ops.GetAsync("/v1/rules/audit-orders"), HttpStatusCode.NotFound, "UnknownRule");
        var badRule = await AssertProblemAsync(await ops.PutAsync("/v1/rules", Json("""{"name": "bad", "on": {"type": "order"}, "do": [{"send": {"shard": 1}}]}""")), HttpStatusCode.BadRequest, "BadRule");
        Assert.Contains("$.do[0].send", badRule["detail"]!.GetValue<string>(), StringComparison.Ordinal);

        // A session token no replica can cover (from another cluster's future): 503, retriable, after the wait bound.
        var future = new HttpRequestMessage(HttpMethod.Get, "/v1/shards/1/actors/order/1");
        future.Headers.Add(HttpApiEndpoints.ReadTokenHeader, ReadToken.Of(1, Guid.NewGuid(), 5).ToString());
        var uncovered = await acme.SendAsync(future);
        Assert.Equal("1", uncovered.Headers.RetryAfter?.ToString());
        Assert.True((await AssertProblemAsync(uncovered, HttpStatusCode.ServiceUnavailable, "SessionNotCovered"))["retriable"]!.GetValue<bool>());

        // The OpenAPI document is served without credentials.
        var openApi = await Body(await anonymous.GetAsync("/openapi/v1.json"));
        Assert.NotNull(openApi["paths"]!["/v1/shards/{shard}/actors/{type}/{key}/messages"]);
        Assert.NotNull(openApi["paths"]!["/v1/shards/{shard}/changes"]);
        Assert.NotNull(openApi["paths"]!["/v1/shards/{shard}/batches"]);

        // Removing a shard is cluster-wide: 202 with where it stands, then followed until removed; writes then answer 410.
        await AssertProblemAsync(await acme.DeleteAsync("/v1/shards/1"), HttpStatusCode.Forbidden, "Forbidden");
        await AssertProblemAsync(await ops.DeleteAsync("/v1/shards/0"), HttpStatusCode.BadRequest, "BadMessage");
        await AssertProblemAsync(await ops.DeleteAsync("/v1/shards/9"), HttpStatusCode.NotFound, "UnknownShard");
        await AssertProblemAsync(await ops.GetAsync("/v1/shards/2/removal"), HttpStatusCode.BadRequest, "BadMessage");
        var removing = await ops.DeleteAsync("/v1/shards/2");
        Assert.Equal(HttpStatusCode.Accepted, removing.StatusCode);
        Assert.Equal(2, (await Body(removing))["shard"]!.GetValue<int>());
        await Eventually.TrueAsync(async () => (await Body(await ops.GetAsync("/v1/shards/2/removal")))["removal"]!["state"]!.GetValue<string>() == "removed",
            TimeSpan.FromSeconds(60), "shard 2 removed");
        await AssertProblemAsync(await ops.PostAsync("/v1/shards/2/actors/order/1/messages", Json("""{"kind": "insert", "body": {}}""")), HttpStatusCode.Gone, "ShardRemoved");
    }

    [Fact]
    public async Task Bearer_tokens_carry_their_shards_and_bad_tokens_are_refused()
    {
        await using var silo = await HttpSilo.StartAsync(Settings("http_jwt"));
        using var http = silo.Client();

        var good = Request(HttpMethod.Post, "/v1/shards/2/actors/invoice/1/messages", Jwt("beta", "2", SigningKey), """{"kind": "insert", "body": {"n": 1}}""");
        var sent = await http.SendAsync(good);
        Assert.Equal(HttpStatusCode.OK, sent.StatusCode);
        Assert.Equal("http:beta", await SenderAsync(silo.Client(OpsKey), await Body(sent), shard: 2));

        await AssertProblemAsync(await http.SendAsync(Request(HttpMethod.Get, "/v1/shards/1/actors/invoice/1", Jwt("beta", "2", SigningKey))), HttpStatusCode.Forbidden, "Forbidden");
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(Request(HttpMethod.Get, "/v1/status", Jwt("root", "*", SigningKey)))).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(Request(HttpMethod.Get, "/v1/shards/2/actors/invoice/1", Jwt("beta", "2", "another-signing-key-of-at-least-32-chars")))).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(Request(HttpMethod.Get, "/v1/shards/2/actors/invoice/1", Jwt("beta", "2", SigningKey, expired: true)))).StatusCode);
    }

    [Fact]
    public async Task A_server_sent_events_client_receives_a_types_changes_in_order_and_resumes_after_the_last_event()
    {
        await using var silo = await HttpSilo.StartAsync(Settings("http_sse"));
        using var acme = silo.Client(AcmeKey);
        using var counters = new WatchCounters();
        await acme.PostAsync("/v1/shards/1/actors/order/old/messages", Json("""{"kind": "insert", "body": {}}"""));
        var head = (await Body(await acme.GetAsync("/v1/shards/1/journal?from=1&limit=10"))).AsArray().Count;

        using var subscription = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var events = ReadEventsAsync(acme, $"/v1/shards/1/changes?type=order&after={head}", null, 20, subscription.Token);
        var writes = Task.Run(async () =>
        {
            for (var i = 0; i < 10; i++)
            {
                foreach (var actor in new[] { "order/a", "order/b", "customer/c" })
                {
                    var kind = i == 0 ? "insert" : "modify";
                    var response = await acme.PostAsync($"/v1/shards/1/actors/{actor}/messages", Json($$$"""{"kind": "{{{kind}}}", "body": {"i": {{{i}}}}}"""));
                    response.EnsureSuccessStatusCode();
                }
            }
        });
        var received = await events;
        await writes;
        Assert.True(counters.Live >= 1, "the silo's event stream went live on the shard's journal stream (pushed, not polled)");

        // Only orders, in journal order, each record as its entry left it: versions 1..10 per actor, i = version - 1.
        Assert.Equal(received.Select(e => e.Position).Order(), received.Select(e => e.Position));
        Assert.All(received, e => Assert.StartsWith("order/", e.Actor, StringComparison.Ordinal));
        foreach (var actor in new[] { "order/a", "order/b" })
        {
            var mine = received.Where(e => e.Actor == actor).ToList();
            Assert.Equal(Enumerable.Range(1, 10).Select(v => (long)v), mine.Select(e => e.Version));
            Assert.All(mine, e => Assert.Equal(e.Version - 1, e.I));
        }

        // Reconnecting with Last-Event-ID continues right after that event: nothing lost, nothing repeated. The id is a
        // watch position (valid on any primary); a bare journal position, as earlier versions sent, still works.
        var resumed = await ReadEventsAsync(acme, "/v1/shards/1/changes?type=order", received[9].EventId, 10, subscription.Token);
        Assert.Equal(received.Skip(10).Select(e => e.Position), resumed.Select(e => e.Position));
        var resumedByPosition = await ReadEventsAsync(acme, "/v1/shards/1/changes?type=order", received[9].Position.ToString(), 10, subscription.Token);
        Assert.Equal(received.Skip(10).Select(e => e.Position), resumedByPosition.Select(e => e.Position));
        var refused = new HttpRequestMessage(HttpMethod.Get, "/v1/shards/1/changes?type=order");
        refused.Headers.Add("Last-Event-ID", "not an id");
        Assert.Equal(HttpStatusCode.BadRequest, (await acme.SendAsync(refused, subscription.Token)).StatusCode);
    }

    private Dictionary<string, string?> Settings(string prefix)
    {
        var settings = new Dictionary<string, string?>(postgres.CreateTopology(prefix, 0, 1, 2).Settings)
        {
            ["Pr2:Http:ApiKeys:0:Name"] = "acme",
            ["Pr2:Http:ApiKeys:0:Key"] = AcmeKey,
            ["Pr2:Http:ApiKeys:0:Shards:0"] = "1",
            ["Pr2:Http:ApiKeys:1:Name"] = "ops",
            ["Pr2:Http:ApiKeys:1:Key"] = OpsKey,
            ["Pr2:Http:ApiKeys:1:Shards:0"] = "*",
            ["Pr2:Http:Jwt:SigningKey"] = SigningKey,
            ["Pr2:Http:Jwt:Issuer"] = "pr2-tests",
        };
        settings["Pr2:Connections:a"] = postgres.Server.ConnectionString($"{prefix}_added_a");
        return settings;
    }

    private static async Task<List<(long Position, string Actor, long Version, int I, string EventId)>> ReadEventsAsync(
        HttpClient http, string path, string? lastEventId, int count, CancellationToken cancellationToken) =>
        (await ServerSentEvents.ReadChangesAsync(http, path, lastEventId, count, cancellationToken)).Select(e => (
            e.Change["position"]!.GetValue<long>(), e.Change["record"]!["actor"]!.GetValue<string>(), e.Change["record"]!["version"]!.GetValue<long>(),
            e.Change["record"]!["state"]!["i"]!.GetValue<int>(), e.EventId)).ToList();

    private static async Task<string> SenderAsync(HttpClient admin, JsonNode ack, int shard = 1)
    {
        var position = ack["position"]!.GetValue<long>();
        var entries = (await Body(await admin.GetAsync($"/v1/shards/{shard}/journal?from={position}&limit=1"))).AsArray();
        return entries.Single()!["sender"]!.GetValue<string>();
    }

    private static async Task<JsonNode> AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status, string code)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonNode.Parse(body)!;
        Assert.Equal((code, (int)status), (problem["code"]!.GetValue<string>(), problem["status"]!.GetValue<int>()));
        Assert.False(string.IsNullOrEmpty(problem["detail"]?.GetValue<string>()), body);
        return problem;
    }

    private static async Task<JsonNode> Body(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!;
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private static HttpRequestMessage Get(string path, string token)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Add(HttpApiEndpoints.ReadTokenHeader, token);
        return request;
    }

    private static HttpRequestMessage Request(HttpMethod method, string path, string bearer, string? json = null)
    {
        var request = new HttpRequestMessage(method, path) { Content = json is null ? null : Json(json) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        return request;
    }

    private static string Jwt(string subject, string shards, string signingKey, bool expired = false) =>
        new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = "pr2-tests",
            Subject = new ClaimsIdentity([new Claim("sub", subject), new Claim(ShardAccess.ClaimType, shards)]),
            NotBefore = DateTime.UtcNow.AddMinutes(expired ? -20 : -1),
            Expires = DateTime.UtcNow.AddMinutes(expired ? -10 : 10),
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(signingKey)), SecurityAlgorithms.HmacSha256),
        });
}
