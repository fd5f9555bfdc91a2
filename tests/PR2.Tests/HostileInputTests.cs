using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using PR2.Silo.Http;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// Hostile input, table-driven, through both doors (the HTTP API, and Orleans calls that bypass the .NET client's own
/// checks): every bad body, id, shard, header, token, size, depth, encoding and field gets its typed refusal, writes
/// nothing, and never fails the innocent appends racing it (a bad entry that reached a group commit would fail its
/// whole batch). PostgreSQL's own error text never reaches a caller.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class HostileInputTests(PostgresFixture postgres)
{
    private const string AcmeKey = "acme-key-0123456789";
    private const string OpsKey = "ops-key-0123456789";
    private const int Innocents = 4;
    private const string AddressedElsewhere = "addressed to another actor";

    // {new} in a path is a fresh key per case; order/live is live at version 1 (inserted with LiveId), order/gone canceled.
    private static readonly Guid LiveId = Guid.NewGuid();

    public static IEnumerable<HttpCase> HttpCases()
    {
        const string send = "/v1/shards/1/actors/order/{new}/messages";
        static string Insert(string body) => $$"""{"kind": "insert", "body": {{body}}}""";

        // Bodies PostgreSQL's jsonb would refuse, or that are not one small JSON object.
        foreach (var (name, body) in new[]
        {
            ("string holding \\u0000", """{"a": "x\u0000y"}"""),
            ("member name holding \\u0000", """{"\u0000": 1}"""),
            ("\\u0000 deep in an array", """{"a": [1, {"b": ["ok", "\u0000"]}]}"""),
            ("lone high surrogate", """{"a": "\ud800"}"""),
            ("lone low surrogate", """{"a": "\udc00"}"""),
            ("high surrogate then a letter", """{"a": "\ud800x"}"""),
            ("two high surrogates", """{"a": "\ud800\ud800"}"""),
            ("high surrogate then another escape", """{"a": "\ud800\n"}"""),
            ("member name with a lone surrogate", """{"\udfff": 1}"""),
            ("number 1e1000000", """{"a": 1e1000000}"""),
            ("number 1e131072", """{"a": 1e131072}"""),
            ("number -1e131072", """{"a": -1e131072}"""),
            ("number 99e131071", """{"a": 99e131071}"""),
            ("number 1e-16384", """{"a": 1e-16384}"""),
            ("number 1.5e-16383", """{"a": 1.5e-16383}"""),
            ("number 0e-99999", """{"a": 0e-99999}"""),
            ("exponent past 64 bits", """{"a": 1e99999999999999999999}"""),
            ("negative exponent past 64 bits", """{"a": 1e-99999999999999999999}"""),
            ("number in a nested array", """{"a": [[[1E+131072]]]}"""),
            ("array", "[1, 2]"),
            ("string", "\"text\""),
            ("number", "42"),
            ("true", "true"),
            ("null", "null"),
            ("repeated member", """{"a": 1, "a": 2}"""),
            ("repeated member nested", """{"a": {"b": 1, "b": 1}}"""),
            ("nested past the depth limit", string.Concat(Enumerable.Repeat("{\"a\":", 70)) + "1" + new string('}', 70)),
        })
        {
            yield return new(name, HttpMethod.Post, send, Insert(body), 400, "BadBody");
        }

        yield return new("insert without a body", HttpMethod.Post, send, """{"kind": "insert"}""", 400, "BadBody");
        yield return new("modify patch holding \\u0000", HttpMethod.Post, "/v1/shards/1/actors/order/live/messages",
            """{"kind": "modify", "body": {"a": "\u0000"}}""", 400, "BadBody");
        yield return new("modify patch with a huge number", HttpMethod.Post, "/v1/shards/1/actors/order/live/messages",
            """{"kind": "modify", "body": {"a": 1e200000}}""", 400, "BadBody");

        // The request itself.
        yield return new("not JSON", HttpMethod.Post, send, "hello", 400, "BadBody");
        yield return new("empty request", HttpMethod.Post, send, "", 400, "BadBody");
        yield return new("request is an array", HttpMethod.Post, send, "[]", 400, "BadBody");
        yield return new("request is null", HttpMethod.Post, send, "null", 400, "BadBody");
        yield return new("truncated request", HttpMethod.Post, send, """{"kind": "insert", "body": {"a": 1""", 400, "BadBody");
        yield return new("invalid UTF-8", HttpMethod.Post, send, null, 400, "BadBody",
            Raw: [.. "{\"kind\": \"insert\", \"body\": {\"a\": \""u8, 0xff, 0xfe, .. "\"}}"u8]);
        yield return new("UTF-16 request", HttpMethod.Post, send, null, 400, "BadBody", Raw: Encoding.Unicode.GetBytes(Insert("{}")));
        yield return new("body over the message limit", HttpMethod.Post, send, Insert($$"""{"x": "{{new string('x', 300 * 1024)}}"}"""), 413, "BodyTooLarge");
        yield return new("request over the API's limit", HttpMethod.Post, send, Insert($$"""{"x": "{{new string('x', 2 * 1024 * 1024)}}"}"""), 413, "BodyTooLarge");

        // The envelope.
        yield return new("unknown kind", HttpMethod.Post, send, """{"kind": "upsert", "body": {}}""", 400, "BadMessage");
        yield return new("kind by number", HttpMethod.Post, send, """{"kind": "1", "body": {}}""", 400, "BadMessage");
        yield return new("kind empty", HttpMethod.Post, send, """{"kind": "", "body": {}}""", 400, "BadMessage");
        yield return new("kind missing", HttpMethod.Post, send, """{"body": {}}""", 400, "BadBody");
        yield return new("kind null", HttpMethod.Post, send, """{"kind": null, "body": {}}""", 400, "BadMessage");
        yield return new("kind a number", HttpMethod.Post, send, """{"kind": 1, "body": {}}""", 400, "BadBody");
        yield return new("kind an object", HttpMethod.Post, send, """{"kind": {"k": "insert"}, "body": {}}""", 400, "BadBody");
        yield return new("messageId not a uuid", HttpMethod.Post, send, """{"kind": "insert", "body": {}, "messageId": "42"}""", 400, "BadBody");
        yield return new("messageId empty uuid", HttpMethod.Post, send, """{"kind": "insert", "body": {}, "messageId": "00000000-0000-0000-0000-000000000000"}""", 400, "BadMessage");
        yield return new("expectedVersion not a number", HttpMethod.Post, send, """{"kind": "insert", "body": {}, "expectedVersion": "x"}""", 400, "BadBody");
        yield return new("expectedVersion a fraction", HttpMethod.Post, send, """{"kind": "insert", "body": {}, "expectedVersion": 1.5}""", 400, "BadBody");
        yield return new("expectedVersion past 64 bits", HttpMethod.Post, send, """{"kind": "insert", "body": {}, "expectedVersion": 99999999999999999999}""", 400, "BadBody");
        yield return new("expectedVersion negative", HttpMethod.Post, send, """{"kind": "insert", "body": {}, "expectedVersion": -1}""", 409, "VersionMismatch");
        yield return new("sender with a control character", HttpMethod.Post, send, """{"kind": "insert", "body": {}, "sender": "ui\u0007"}""", 400, "BadMessage");
        yield return new("sender holding \\u0000", HttpMethod.Post, send, """{"kind": "insert", "body": {}, "sender": "ui\u0000"}""", 400, "BadMessage");
        yield return new("sender with a lone surrogate", HttpMethod.Post, send, """{"kind": "insert", "body": {}, "sender": "ui\ud800"}""", 400, "BadBody");
        yield return new("sender too long", HttpMethod.Post, send, $$"""{"kind": "insert", "body": {}, "sender": "{{new string('s', 300)}}"}""", 400, "BadMessage");
        yield return new("sender not a string", HttpMethod.Post, send, """{"kind": "insert", "body": {}, "sender": 7}""", 400, "BadBody");

        // Addresses.
        yield return new("unknown shard", HttpMethod.Post, "/v1/shards/42/actors/order/{new}/messages", Insert("{}"), 404, "UnknownShard", OpsKey);
        yield return new("negative shard", HttpMethod.Post, "/v1/shards/-1/actors/order/{new}/messages", Insert("{}"), 404, "UnknownShard", OpsKey);
        yield return new("shard past 32 bits", HttpMethod.Post, "/v1/shards/99999999999/actors/order/{new}/messages", Insert("{}"), 404, null, OpsKey);
        foreach (var (name, type, key) in new[]
        {
            ("type in upper case", "Order", "1"),
            ("type starting with a digit", "1order", "1"),
            ("type with punctuation", "order!", "1"),
            ("key with a space", "order", "has%20space"),
            ("key with unicode", "order", "%C3%BCni"),
            ("key with an encoded slash", "order", "a%2Fb"),
            ("key with SQL", "order", "'%3B%20drop%20table%20pr2_journal%3B%20--"),
                        ("key over the length limit", "order", new string('k', 300)),
        })
        {
            yield return new(name, HttpMethod.Post, $"/v1/shards/1/actors/{type}/{key}/messages", Insert("{}"), 400, "BadActorId");
        }

        yield return new("key with a NUL", HttpMethod.Post, "/v1/shards/1/actors/order/a%00b/messages", Insert("{}"), 400, null); // Kestrel's own refusal

        // Credentials and headers.
        yield return new("no credentials", HttpMethod.Post, send, Insert("{}"), 401, null, Key: null);
        yield return new("unknown key", HttpMethod.Post, send, Insert("{}"), 401, null, Key: "not-a-key-0123456789");
        yield return new("key of 10,000 characters", HttpMethod.Post, send, Insert("{}"), 401, null, Key: new string('k', 10_000));
        yield return new("another company's shard", HttpMethod.Post, "/v1/shards/2/actors/order/{new}/messages", Insert("{}"), 403, "Forbidden");
        yield return new("the control shard", HttpMethod.Post, "/v1/shards/0/actors/rule/evil/messages", Insert("{}"), 403, "Forbidden");
        foreach (var reserved in new[] { "rule/evil", "shard/1", "agent/records" })
        {
            yield return new($"PR2's own {reserved} with the cluster key", HttpMethod.Post, $"/v1/shards/0/actors/{reserved}/messages",
                """{"kind": "modify", "body": {"primary": 1}}""", 403, "ReservedActor", OpsKey);
        }

        yield return new("garbage bearer token", HttpMethod.Post, send, Insert("{}"), 401, null, Key: null,
            Adjust: r => r.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "abc.def.ghi"));
        yield return new("unsigned bearer token", HttpMethod.Post, send, Insert("{}"), 401, null, Key: null,
            Adjust: r => r.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4IiwicHIyX3NoYXJkcyI6IioifQ."));
        yield return new("garbage read token", HttpMethod.Post, send, Insert("{}"), 400, "BadMessage",
            Adjust: r => r.Headers.Add(HttpApiEndpoints.ReadTokenHeader, "garbage!"));
        yield return new("read token of the wrong length", HttpMethod.Post, send, Insert("{}"), 400, "BadMessage",
            Adjust: r => r.Headers.Add(HttpApiEndpoints.ReadTokenHeader, "AAAA"));

        // Against the record.
        yield return new("insert on a live record", HttpMethod.Post, "/v1/shards/1/actors/order/live/messages", Insert("{}"), 409, "RecordExists");
        yield return new("modify of a missing record", HttpMethod.Post, send, """{"kind": "modify", "body": {}}""", 404, "RecordMissing");
        yield return new("cancel of a missing record", HttpMethod.Post, send, """{"kind": "cancel"}""", 404, "RecordMissing");
        yield return new("modify of a canceled record", HttpMethod.Post, "/v1/shards/1/actors/order/gone/messages", """{"kind": "modify", "body": {}}""", 409, "RecordCanceled");
        yield return new("expected version behind", HttpMethod.Post, "/v1/shards/1/actors/order/live/messages", """{"kind": "modify", "body": {}, "expectedVersion": 0}""", 409, "VersionMismatch");
        yield return new("expected version ahead", HttpMethod.Post, "/v1/shards/1/actors/order/live/messages", """{"kind": "modify", "body": {}, "expectedVersion": 9}""", 409, "VersionMismatch");
        yield return new("MessageId reused for another body", HttpMethod.Post, "/v1/shards/1/actors/order/live/messages",
            $$"""{"kind": "insert", "body": {"n": 2}, "messageId": "{{LiveId}}"}""", 409, "IdempotencyConflict");
        yield return new("MessageId reused for another actor", HttpMethod.Post, send,
            $$"""{"kind": "insert", "body": {"n": 1}, "messageId": "{{LiveId}}"}""", 409, "IdempotencyConflict");

        // Reads and other endpoints.
        yield return new("asOf not a stamp", HttpMethod.Get, "/v1/shards/1/actors/order/live?asOf=abc", null, 400, "BadMessage");
        yield return new("unknown consistency", HttpMethod.Get, "/v1/shards/1/actors/order/live?consistency=sometimes", null, 400, "BadMessage");
        yield return new("query filter not JSON", HttpMethod.Get, "/v1/shards/1/records/order?contains=%7Bnope", null, 400, "BadBody");
        yield return new("changes of a bad actor id", HttpMethod.Get, "/v1/shards/1/changes?actor=Nope", null, 400, "BadActorId");
        yield return new("rules without the cluster key", HttpMethod.Put, "/v1/rules", """{"name": "x", "on": {"type": "order"}, "do": []}""", 403, "Forbidden");
        yield return new("a rule that is not a rule", HttpMethod.Put, "/v1/rules", """{"name": "x"}""", 400, "BadRule", OpsKey);
        yield return new("a rule holding \\u0000", HttpMethod.Put, "/v1/rules",
            """{"name": "nul", "on": {"type": "order"}, "do": [{"view": {"name": "v", "key": "{entry.key}", "set": {"n": "\u0000"}}}]}""", 400, "BadBody", OpsKey);
    }

    [Fact]
    public async Task Hostile_http_requests_get_typed_refusals_write_nothing_and_never_fail_innocent_appends_racing_them()
    {
        var topology = postgres.CreateTopology("hostile_http", 0, 1, 2);
        await using var silo = await HttpSilo.StartAsync(Settings(topology));
        using var acme = silo.Client(AcmeKey);
        await SetUpAsync(acme);

        var cases = HttpCases().ToList();
        Assert.True(cases.Count >= 60, $"{cases.Count} cases");
        var failures = new List<string>();
        foreach (var hostile in cases)
        {
            var before = await JournalCountsAsync(topology);
            var innocents = Enumerable.Range(0, Innocents)
                .Select(_ => acme.PostAsync($"/v1/shards/1/actors/order/innocent-{Guid.NewGuid():N}/messages", Json("""{"kind": "insert", "body": {"ok": true}}""")))
                .ToList();
            using var client = hostile.Key is null ? silo.Client() : silo.Client(hostile.Key);
            var request = new HttpRequestMessage(hostile.Method, hostile.Path.Replace("{new}", $"h-{Guid.NewGuid():N}", StringComparison.Ordinal))
            {
                Content = hostile.Raw is { } raw ? new ByteArrayContent(raw) { Headers = { ContentType = new("application/json") } }
                    : hostile.Json is null ? null : Json(hostile.Json),
            };
            hostile.Adjust?.Invoke(request);
            using var response = await client.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();
            var innocentAnswers = await Task.WhenAll(innocents);

            var problems = new List<string>();
            if ((int)response.StatusCode != hostile.Status)
            {
                problems.Add($"status {(int)response.StatusCode}, expected {hostile.Status}");
            }

            if (hostile.Code is not null)
            {
                var code = TryParse(text)?["code"]?.GetValue<string>();
                if (code != hostile.Code)
                {
                    problems.Add($"code {code ?? "(none)"}, expected {hostile.Code}");
                }
            }

            if (text.Contains("PostgresException", StringComparison.Ordinal) || text.Contains("SQLSTATE", StringComparison.Ordinal) || text.Contains("Npgsql", StringComparison.Ordinal))
            {
                problems.Add("the database's own error text reached the caller");
            }

            var failedInnocents = innocentAnswers.Count(a => a.StatusCode != HttpStatusCode.OK);
            if (failedInnocents > 0)
            {
                problems.Add($"{failedInnocents} innocent appends racing it failed ({(int)innocentAnswers.First(a => a.StatusCode != HttpStatusCode.OK).StatusCode})");
            }

            var after = await JournalCountsAsync(topology);
            if (after - before != Innocents)
            {
                problems.Add($"the journals grew by {after - before}, expected only the {Innocents} innocent entries");
            }

            if (problems.Count > 0)
            {
                failures.Add($"{hostile.Name}: {string.Join("; ", problems)}: {Shorten(text)}");
            }
        }

        Assert.True(failures.Count == 0, $"{failures.Count} of {cases.Count} cases failed:\n" + string.Join("\n", failures));
    }

    public static IEnumerable<(string Name, Func<ActorRef, Message> Make, ErrorCode Code)> MessageCases()
    {
        static Message Insert(ActorRef to, string body = "{}") => new(Guid.NewGuid(), "orleans-client", to, MessageKind.Insert, body);
        yield return ("causedBy counter past 2^53", to => Insert(to) with { CausedBy = new LamportStamp(long.MaxValue - 5, 1) }, ErrorCode.BadMessage);
        yield return ("causedBy counter just past 2^53", to => Insert(to) with { CausedBy = new LamportStamp((1L << 53) + 1, 1) }, ErrorCode.BadMessage);
        yield return ("causedBy counter zero", to => Insert(to) with { CausedBy = new LamportStamp(0, 1) }, ErrorCode.BadMessage);
        yield return ("causedBy counter negative", to => Insert(to) with { CausedBy = new LamportStamp(-7, 1) }, ErrorCode.BadMessage);
        yield return ("causedBy an unknown shard", to => Insert(to) with { CausedBy = new LamportStamp(5, 77) }, ErrorCode.BadMessage);
        yield return ("causedBy a negative shard", to => Insert(to) with { CausedBy = new LamportStamp(5, -1) }, ErrorCode.BadMessage);
        yield return ("hops negative", to => Insert(to) with { Hops = -1 }, ErrorCode.BadMessage);
        yield return ("hops past the limit", to => Insert(to) with { Hops = 9 }, ErrorCode.BadMessage);
        yield return ("hops past 16 bits", to => Insert(to) with { Hops = 40_000 }, ErrorCode.BadMessage);
        yield return ("sender null", to => Insert(to) with { Sender = null! }, ErrorCode.BadMessage);
        yield return ("sender empty", to => Insert(to) with { Sender = "" }, ErrorCode.BadMessage);
        yield return ("sender holding NUL", to => Insert(to) with { Sender = "a\0b" }, ErrorCode.BadMessage);
        yield return ("sender with a lone surrogate", to => Insert(to) with { Sender = "a\ud800" }, ErrorCode.BadMessage);
        yield return ("body with a raw lone surrogate", to => Insert(to, "{\"a\": \"x\ud800\"}"), ErrorCode.BadBody);
        yield return ("body with a raw NUL", to => Insert(to, "{\"a\": \"x\0\"}"), ErrorCode.BadBody);
        yield return ("body with an escaped NUL", to => Insert(to, """{"a": "\u0000"}"""), ErrorCode.BadBody);
        yield return ("body with a huge number", to => Insert(to, """{"a": 1e1000000}"""), ErrorCode.BadBody);
        yield return ("body with a member name holding a lone surrogate", to => Insert(to, """{"\udc00": 1}"""), ErrorCode.BadBody);
        yield return ("body null", to => Insert(to) with { Body = null! }, ErrorCode.BadBody);
        yield return ("empty MessageId", to => Insert(to) with { MessageId = Guid.Empty }, ErrorCode.BadMessage);
        yield return ("kind zero", to => Insert(to) with { Kind = 0 }, ErrorCode.BadMessage);
        yield return (AddressedElsewhere, to => Insert(to with { ActorId = "order/someone-else" }), ErrorCode.BadMessage);
    }

    [Fact]
    public async Task Hostile_messages_through_orleans_are_refused_at_both_doors_and_never_fail_innocent_appends()
    {
        var topology = postgres.CreateTopology("hostile_orleans", 0, 1, 2);
        await using var silo = await HttpSilo.StartAsync(Settings(topology));
        using var acme = silo.Client(AcmeKey);
        var failures = new List<string>();
        var count = 0;
        foreach (var (name, make, code) in MessageCases())
        {
            // The actor's own door, and the insert path's (first inserts never reach the actor).
            foreach (var door in new[] { "actor", "insert path" })
            {
                if (door == "insert path" && name == AddressedElsewhere)
                {
                    continue; // the insert path is the shard's: the receiver a message names is its only address
                }

                count++;
                var before = await JournalCountsAsync(topology);
                var innocents = Enumerable.Range(0, Innocents)
                    .Select(_ => acme.PostAsync($"/v1/shards/1/actors/order/innocent-{Guid.NewGuid():N}/messages", Json("""{"kind": "insert", "body": {"ok": true}}""")))
                    .ToList();
                var to = new ActorRef(1, $"order/h-{Guid.NewGuid():N}");
                var message = make(to);
                var call = door == "actor"
                    ? silo.Grains.GetGrain<IActorGrain>(1, to.ActorId, null).Send(message)
                    : silo.Grains.GetGrain<IInsertGrain>(1).Insert(message);
                var answer = await Record.ExceptionAsync(() => call);
                var innocentAnswers = await Task.WhenAll(innocents);
                var after = await JournalCountsAsync(topology);

                var problems = new List<string>();
                if (answer is not Pr2Exception refused || refused.Code != code)
                {
                    problems.Add($"answered {answer?.GetType().Name ?? "an ack"} {(answer as Pr2Exception)?.Code}, expected {code}: {answer?.Message}");
                }

                if (innocentAnswers.Any(a => a.StatusCode != HttpStatusCode.OK))
                {
                    problems.Add("innocent appends racing it failed");
                }

                if (after - before != Innocents)
                {
                    problems.Add($"the journals grew by {after - before}, expected {Innocents}");
                }

                if (problems.Count > 0)
                {
                    failures.Add($"{name} ({door}): {string.Join("; ", problems)}");
                }
            }
        }

        Assert.True(failures.Count == 0, $"{failures.Count} of {count} cases failed:\n" + string.Join("\n", failures));
    }

    [Fact]
    public async Task A_rule_record_written_around_the_rules_api_is_reported_and_skipped_and_never_hides_the_other_rules()
    {
        var topology = postgres.CreateTopology("hostile_rules", 0, 1, 2);
        await using var silo = await HttpSilo.StartAsync(Settings(topology));
        using var ops = silo.Client(OpsKey);
        var first = await ops.PostAsync("/v1/shards/1/actors/order/1/messages", Json("""{"kind": "insert", "body": {}}"""));
        Assert.True(first.IsSuccessStatusCode, await first.Content.ReadAsStringAsync());
        var good = await ops.PutAsync("/v1/rules", Json("""{"name": "good", "on": {"type": "order"}, "do": [{"view": {"name": "seen", "key": "{entry.key}", "set": {"n": 1}}}]}"""));
        Assert.True(good.IsSuccessStatusCode, await good.Content.ReadAsStringAsync());

        // Messages to PR2's own actors are refused to callers; only a caller inside the cluster, bypassing the client, can
        // still write one (until the gateway authenticates callers): that record must not break rule loading.
        var before = await topology.JournalCountAsync(0);
        var refused = await Assert.ThrowsAsync<Pr2Exception>(() => new PR2.Client.Pr2Client(silo.ClusterClient).SendAsync(0, "rule/broken", MessageKind.Insert, """{"definition": 5}"""));
        Assert.Equal(ErrorCode.ReservedActor, refused.Code);
        Assert.Equal(before, await topology.JournalCountAsync(0));
        foreach (var (name, state) in new[] { ("broken", """{"definition": 5}"""), ("odd", """{"definition": {}, "removed": "yes"}"""), ("bad-start", """{"definition": {}, "start": {"x": 1}}""") })
        {
            await silo.Grains.GetGrain<IActorGrain>(0, $"rule/{name}", null).Send(new Message(Guid.NewGuid(), "inside", new ActorRef(0, $"rule/{name}"), MessageKind.Insert, state));
        }

        var list = await ops.GetAsync("/v1/rules");
        var text = await list.Content.ReadAsStringAsync();
        Assert.True(list.IsSuccessStatusCode, text);
        Assert.Equal(["good"], JsonNode.Parse(text)!.AsArray().Select(r => r!["name"]!.GetValue<string>()));
        // The HTTP shape: the definition as JSON (not a string of it), where it starts as stamps, counter@shard.
        var shown = JsonNode.Parse(text)!.AsArray().Single()!;
        Assert.Equal("order", shown["definition"]!["on"]!["type"]!.GetValue<string>());
        Assert.Matches("^[0-9]+@1$", shown["startAfter"]!["1"]!.GetValue<string>()); // starts after the order written above
        var broken = await ops.GetAsync("/v1/rules/broken");
        Assert.Equal(HttpStatusCode.BadRequest, broken.StatusCode);
        Assert.Equal("BadRule", JsonNode.Parse(await broken.Content.ReadAsStringAsync())!["code"]!.GetValue<string>());

        // Putting the rule again replaces the record.
        var replaced = await ops.PutAsync("/v1/rules", Json("""{"name": "broken", "on": {"type": "order"}, "do": [{"view": {"name": "seen2", "key": "{entry.key}", "set": {"n": 1}}}]}"""));
        Assert.True(replaced.IsSuccessStatusCode, await replaced.Content.ReadAsStringAsync());
        Assert.Equal(["broken", "good"], JsonNode.Parse(await (await ops.GetAsync("/v1/rules")).Content.ReadAsStringAsync())!.AsArray().Select(r => r!["name"]!.GetValue<string>()));
    }

    [Fact]
    public async Task A_caller_cannot_hold_more_change_streams_than_its_limit_and_a_closed_one_frees_its_place()
    {
        var topology = postgres.CreateTopology("hostile_streams", 0, 1, 2);
        var settings = Settings(topology);
        settings["Pr2:Http:MaxStreamsPerCaller"] = "2";
        await using var silo = await HttpSilo.StartAsync(settings);
        using var acme = silo.Client(AcmeKey);
        using var ops = silo.Client(OpsKey);

        async Task<HttpResponseMessage> OpenAsync(HttpClient client, CancellationToken cancellationToken) =>
            await client.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/v1/shards/1/changes?type=order"), HttpCompletionOption.ResponseHeadersRead, cancellationToken);

        using var first = new CancellationTokenSource();
        using var second = new CancellationTokenSource();
        var open = new List<HttpResponseMessage> { await OpenAsync(acme, first.Token), await OpenAsync(acme, second.Token) };
        Assert.All(open, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));

        using var third = await OpenAsync(acme, CancellationToken.None);
        Assert.Equal(HttpStatusCode.TooManyRequests, third.StatusCode);
        var problem = JsonNode.Parse(await third.Content.ReadAsStringAsync())!;
        Assert.Equal(("TooManyStreams", true), (problem["code"]!.GetValue<string>(), problem["retriable"]!.GetValue<bool>()));

        // Another caller has limits of its own; and a stream that ends frees its place.
        using var other = await OpenAsync(ops, CancellationToken.None);
        Assert.Equal(HttpStatusCode.OK, other.StatusCode);
        open[0].Dispose();
        await first.CancelAsync();
        await Eventually.TrueAsync(async () =>
        {
            using var again = await OpenAsync(acme, CancellationToken.None);
            return again.StatusCode == HttpStatusCode.OK;
        }, TimeSpan.FromSeconds(30), "a closed stream frees its place");
        open[1].Dispose();
    }

    private static async Task SetUpAsync(HttpClient acme)
    {
        foreach (var (path, json) in new[]
        {
            ("/v1/shards/1/actors/order/live/messages", $$"""{"kind": "insert", "body": {"n": 1}, "messageId": "{{LiveId}}"}"""),
            ("/v1/shards/1/actors/order/gone/messages", """{"kind": "insert", "body": {}}"""),
            ("/v1/shards/1/actors/order/gone/messages", """{"kind": "cancel"}"""),
        })
        {
            var response = await acme.PostAsync(path, Json(json));
            Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        }
    }

    // The business shards' journals; shard 0 takes the directory's own writes while the silo starts.
    private static async Task<long> JournalCountsAsync(TestTopology topology) =>
        await topology.JournalCountAsync(1) + await topology.JournalCountAsync(2);

    private static Dictionary<string, string?> Settings(TestTopology topology) => new(topology.Settings)
    {
        ["Pr2:Http:ApiKeys:0:Name"] = "acme",
        ["Pr2:Http:ApiKeys:0:Key"] = AcmeKey,
        ["Pr2:Http:ApiKeys:0:Shards:0"] = "1",
        ["Pr2:Http:ApiKeys:1:Name"] = "ops",
        ["Pr2:Http:ApiKeys:1:Key"] = OpsKey,
        ["Pr2:Http:ApiKeys:1:Shards:0"] = "*",
    };

    private static JsonNode? TryParse(string text)
    {
        try
        {
            return JsonNode.Parse(text);
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }

    private static string Shorten(string text) => text.Length <= 300 ? text : text[..300] + "...";

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    /// <summary>One hostile HTTP request and the refusal it must get (<paramref name="Code"/> null: the status alone).</summary>
    public sealed record HttpCase(string Name, HttpMethod Method, string Path, string? Json, int Status, string? Code,
        string? Key = AcmeKey, Action<HttpRequestMessage>? Adjust = null, byte[]? Raw = null);
}
