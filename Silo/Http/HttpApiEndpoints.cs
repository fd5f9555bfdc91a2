using System.Globalization;
using System.Net.ServerSentEvents;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using PR2.Client;

namespace PR2.Silo.Http;

/// <summary>
/// The HTTP/JSON API, under <c>/v1</c>: the same operations and refusals as <see cref="Pr2Client"/>. Reads take
/// <c>consistency</c> (<c>session</c>, the default, <c>strong</c>, <c>eventual</c>); the session travels in the
/// <c>Pr2-Read-Token</c> header: send the last one you got back, and every answer returns the merged token.
/// </summary>
public static class HttpApiEndpoints
{
    public const string ReadTokenHeader = "Pr2-Read-Token";

    public static IEndpointRouteBuilder MapPr2HttpApi(this IEndpointRouteBuilder app, HttpApiOptions options)
    {
        var api = app.MapGroup("/v1").WithTags("PR2").ProducesProblem(StatusCodes.Status400BadRequest);
        if (!options.IsOpen)
        {
            api.RequireAuthorization().ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden);
        }

        var shard = api.MapGroup("/shards/{shard:int}").ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        shard.MapPost("/actors/{type}/{key}/messages", SendAsync).WithName("Send")
            .WithSummary("Send a message (insert, modify, cancel) to an actor; answers once its journal entry committed.")
            .Accepts<SendMessageRequest>("application/json").Produces<WriteAckResponse>().ProducesProblem(StatusCodes.Status409Conflict);
        shard.MapPost("/batches", SendBatchAsync).WithName("SendBatch")
            .WithSummary("Send an atomic batch: messages to actors of the shard, written all together in order, or none (every refusal listed).")
            .Accepts<SendBatchRequest>("application/json").Produces<BatchAckResponse>().ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge);
        shard.MapGet("/actors/{type}/{key}", ReadRecordAsync).WithName("ReadRecord")
            .WithSummary("An actor's record, read in one snapshot of one replica; asOf (counter@shard) reads it as it was then.")
            .Produces<RecordReadResponse>();
        shard.MapGet("/records/{type}", QueryAsync).WithName("QueryRecords")
            .WithSummary("Records of a type whose state contains the JSON object 'contains', by actor id, paged by cursor.")
            .Produces<RecordPageResponse>();
        shard.MapGet("/journal", ReadJournalAsync).WithName("ReadJournal")
            .WithSummary("The shard's journal entries from a position.")
            .Produces<IReadOnlyList<JournalEntryView>>();

        shard.MapGet("/views/{view}", QueryViewAsync).WithName("QueryView")
            .WithSummary("Documents of a view kept by rules in this shard, by key (prefix, limit).")
            .Produces<IReadOnlyList<ViewDocumentView>>();
        shard.MapGet("/changes", Changes).WithName("WatchChanges")
            .WithSummary("Server-Sent Events: record changes of a type (or one actor) in journal order, from now or after a position (after, or Last-Event-ID).")
            .Produces<RecordChangeView>(StatusCodes.Status200OK, "text/event-stream");

        api.MapGet("/shards", ListShardsAsync).WithName("ListShards").WithSummary("The shards the directory records: name, owner, labels, primary and replicas.")
            .Produces<IReadOnlyList<ShardEntry>>();
        api.MapPost("/shards", AddShardAsync).WithName("AddShard")
            .WithSummary("Add a shard to the running cluster: databases created if missing, schema applied, every silo takes it up from the directory; safe to retry.")
            .Accepts<NewShardRequest>("application/json").Produces<ShardEntry>(StatusCodes.Status201Created).ProducesProblem(StatusCodes.Status409Conflict);
        shard.MapGet("", GetShardAsync).WithName("GetShard").WithSummary("One shard: its directory record, replicas (head, how far behind) and agents' lag.")
            .Produces<ShardView>();
        shard.MapPatch("", SetShardMetadataAsync).WithName("SetShardMetadata").WithSummary("Record a shard's name, owner or labels (one journaled change of the directory).")
            .Accepts<ShardMetadataRequest>("application/json").Produces<ShardEntry>();
        shard.MapDelete("", RemoveShardAsync).WithName("RemoveShard")
            .WithSummary("Remove the shard (not 0): its replicas are sealed, agents and rules finish, every silo drops it. Answers at once with where the removal stands; GET /removal follows it. Safe to retry.")
            .Produces<ShardRemovalStatus>(StatusCodes.Status202Accepted);
        shard.MapGet("/removal", GetShardRemovalAsync).WithName("GetShardRemoval")
            .WithSummary("Where the shard's removal stands and what it waits for (it goes on by itself; asking moves it on at once).")
            .Produces<ShardRemovalStatus>();
        shard.MapPost("/primary", MovePrimaryAsync).WithName("MovePrimary")
            .WithSummary("Move the shard's primary to another replica (planned switch-over): writes wait for the switch instead of failing, nothing acknowledged is lost.")
            .Accepts<PrimaryMoveRequest>("application/json").Produces<PrimaryMoveResponse>();
        shard.MapPost("/replicas", AddReplicaAsync).WithName("AddReplica")
            .WithSummary("Add a replica to the shard: database created, recorded joining and filled by anti-entropy; it serves once caught up (GET the shard: joining). Safe to retry.")
            .Accepts<ReplicaAddRequest>("application/json").Produces<ShardEntry>(StatusCodes.Status202Accepted);
        shard.MapDelete("/replicas/{replica:int}", RemoveReplicaAsync).WithName("RemoveReplica")
            .WithSummary("Remove a replica from the shard (not the primary, not the last member): the members left take everything first; writes wait for the switch instead of failing.")
            .Produces<ShardEntry>();
        shard.MapGet("/projections", ListProjectionsAsync).WithName("ListProjections")
            .WithSummary("The projections following the shard (records view, object directory, rules): each replica's mark and lag, and the records view's last rebuild.")
            .Produces<IReadOnlyList<ProjectionStatus>>();
        shard.MapGet("/projections/{projection}", GetProjectionAsync).WithName("GetProjection")
            .WithSummary("One projection on each replica: its mark, and its rebuild (state, folded, head).")
            .Produces<ProjectionStatus>();
        shard.MapPost("/projections/{projection}/rebuild", RebuildProjectionAsync).WithName("RebuildProjection")
            .WithSummary("Rebuild a projection (records) from the journal while writes go on and swap it in atomically on each replica; follow it with GET. Safe to retry.")
            .Produces<ProjectionStatus>(StatusCodes.Status202Accepted);
        shard.MapDelete("/projections/{projection}/rebuild", CancelProjectionRebuildAsync).WithName("CancelProjectionRebuild")
            .WithSummary("Cancel a projection's rebuild in progress on every replica: each drops its shadow and keeps its live view. Safe to retry.")
            .Produces<ProjectionStatus>();
        api.MapGet("/status", StatusAsync).WithName("Status").WithSummary("Shards, replicas, heads, agent marks and lag.").Produces<ClusterStatus>();
        var rules = api.MapGroup("/rules").ProducesProblem(StatusCodes.Status404NotFound);
        rules.MapGet("/", ListRulesAsync).WithName("ListRules").WithSummary("Every rule with its state and definition.").Produces<IReadOnlyList<RuleView>>();
        rules.MapGet("/{name}", GetRuleAsync).WithName("GetRule").WithSummary("One rule: its definition, state and version.").Produces<RuleView>();
        rules.MapPut("/", PutRuleAsync).WithName("PutRule").WithSummary("Add or replace a rule (JSON, see docs/rules.md).")
            .Accepts<JsonElement>("application/json").Produces<RuleView>();
        rules.MapPost("/{name}/pause", (string name, HttpContext http, IClusterClient cluster) => SetPausedAsync(name, true, http, cluster)).WithName("PauseRule").WithSummary("Pause a rule where it is.").Produces<RuleView>();
        rules.MapPost("/{name}/resume", (string name, HttpContext http, IClusterClient cluster) => SetPausedAsync(name, false, http, cluster)).WithName("ResumeRule").WithSummary("Resume a paused rule from where it stopped.").Produces<RuleView>();
        rules.MapDelete("/{name}", RemoveRuleAsync).WithName("RemoveRule").WithSummary("Remove a rule; what it already wrote stays.").Produces(StatusCodes.Status204NoContent);
        return app;
    }

    private static async Task<IResult> SendAsync(int shard, string type, string key, HttpContext http, IClusterClient cluster)
    {
        var user = Require(http, shard);
        var request = await ReadJsonAsync<SendMessageRequest>(http);
        var kind = ByName<MessageKind>(request.Kind) ?? throw new Pr2Exception(ErrorCode.BadMessage, $"kind must be insert, modify or cancel, got '{request.Kind}'");

        var client = Session(http, cluster);
        var body = request.Body is { ValueKind: not JsonValueKind.Null and not JsonValueKind.Undefined } json ? RawText(json) : "";
        var ack = await client.SendAsync(shard, $"{type}/{key}", kind, body, request.MessageId, request.ExpectedVersion, SenderOf(user, request.Sender));
        return Answer(http, client, WriteAckResponse.From(ack));
    }

    private static async Task<IResult> SendBatchAsync(int shard, HttpContext http, IClusterClient cluster)
    {
        var user = Require(http, shard);
        // A batch may be larger than one message's envelope (the server-wide request limit): its own limit, with room for
        // JSON escapes and envelopes; the grain checks the bodies' bytes exactly.
        if (http.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
        {
            var limits = http.RequestServices.GetRequiredService<IOptions<PR2.Grains.Configuration.WriteOptions>>().Value;
            size.MaxRequestBodySize = (2L * limits.MaxBatchBytes) + (1024L * limits.MaxBatchMessages) + (64 * 1024);
        }

        var request = await ReadJsonAsync<SendBatchRequest>(http);
        if (request.Messages is null)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, "messages must be a list of messages");
        }

        var sender = SenderOf(user, request.Sender);
        var messages = request.Messages.Select((m, i) => m is null
            ? throw new Pr2Exception(ErrorCode.BadMessage, $"message {i} is null")
            : new Message(m.MessageId ?? MessageIds.New(), sender, new ActorRef(shard, m.Actor ?? ""),
                ByName<MessageKind>(m.Kind) ?? throw new Pr2Exception(ErrorCode.BadMessage, $"message {i}: kind must be insert, modify or cancel, got '{m.Kind}'"),
                m.Body is { ValueKind: not JsonValueKind.Null and not JsonValueKind.Undefined } json ? RawText(json) : "", m.ExpectedVersion)).ToList();
        var client = Session(http, cluster);
        var ack = await client.SendBatchAsync(shard, messages);
        return Answer(http, client, BatchAckResponse.From(ack));
    }

    private static async Task<IResult> ReadRecordAsync(int shard, string type, string key, string? consistency, string? asOf, HttpContext http, IClusterClient cluster)
    {
        Require(http, shard);
        var client = Session(http, cluster);
        var read = asOf is null
            ? await client.ReadRecordAsync(shard, $"{type}/{key}", Consistency(consistency))
            : await client.ReadRecordAsOfAsync(shard, $"{type}/{key}", LamportStamp.Parse(asOf));
        if (read.Record.Status == RecordStatus.Missing)
        {
            http.Response.Headers[ReadTokenHeader] = client.SessionToken.ToString();
            throw new Pr2Exception(ErrorCode.RecordMissing, $"actor {read.Record.Actor} has no record{(asOf is null ? "" : $" as of {asOf}")} (replica {read.Replica}, position {read.Mark})");
        }

        return Answer(http, client, RecordReadResponse.From(read));
    }

    private static async Task<IResult> QueryAsync(int shard, string type, string? contains, string? cursor, int? limit, string? consistency, HttpContext http, IClusterClient cluster)
    {
        Require(http, shard);
        var client = Session(http, cluster);
        var page = await client.QueryRecordsAsync(shard, type, contains, cursor, limit ?? 100, Consistency(consistency));
        return Answer(http, client, RecordPageResponse.From(page));
    }

    private static async Task<IResult> QueryViewAsync(int shard, string view, string? prefix, int? limit, HttpContext http, IClusterClient cluster)
    {
        Require(http, shard);
        var documents = await new Pr2Client(cluster).QueryViewAsync(shard, view, prefix, limit ?? 100);
        return Results.Ok(documents.Select(ViewDocumentView.From).ToList());
    }

    private static IResult Changes(int shard, string? type, string? actor, long? after, HttpContext http, IClusterClient cluster, StreamLimiter streams)
    {
        var caller = Require(http, shard);
        if (actor is not null && !ActorRef.TryValidate(shard, actor, out var problem))
        {
            throw new Pr2Exception(ErrorCode.BadActorId, problem);
        }

        // A reconnecting EventSource sends the id of the last event it received (a WatchPosition, valid on any primary;
        // a bare position from earlier versions is taken on the current primary): continue right after it.
        var lastEventId = http.Request.Headers["Last-Event-ID"].FirstOrDefault();
        WatchPosition? resume;
        try
        {
            resume = !string.IsNullOrEmpty(lastEventId) ? WatchPosition.Parse(lastEventId) : after is null ? null : WatchPosition.At(after.Value);
        }
        catch (FormatException)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, "Last-Event-ID is not an event id of this stream");
        }

        var limit = Options(http).MaxStreamsPerCaller;
        var lease = streams.TryOpen(caller, limit)
            ?? throw new TooManyStreamsException($"{caller} has {limit} change streams open, the most a caller may hold; close one and retry");
        http.Response.RegisterForDispose(lease); // also when the stream never starts
        var changes = new Pr2Client(cluster).WatchAsync(shard, resume, type, actor, cancellationToken: http.RequestAborted);
        return TypedResults.ServerSentEvents(Events(changes, lease, http.Response));
    }

    private static async IAsyncEnumerable<SseItem<RecordChangeView>> Events(IAsyncEnumerable<RecordChange> changes, IDisposable lease, HttpResponse response)
    {
        using (lease)
        {
            // The headers go out now, not with the first change: a subscriber knows at once that its stream is open.
            await response.Body.FlushAsync(response.HttpContext.RequestAborted);
            await foreach (var change in changes)
            {
                yield return new SseItem<RecordChangeView>(RecordChangeView.From(change), "change") { EventId = change.Resume?.ToString() };
            }
        }
    }

    private static async Task<IResult> ReadJournalAsync(int shard, long? from, int? limit, HttpContext http, IClusterClient cluster)
    {
        Require(http, shard);
        var entries = await new Pr2Client(cluster).ReadJournalAsync(shard, from ?? 1, limit ?? 100);
        return Results.Ok(entries.Select(JournalEntryView.From).ToList());
    }

    private static async Task<IResult> StatusAsync(HttpContext http, IClusterClient cluster)
    {
        RequireAll(http);
        return Results.Ok(await new Pr2Client(cluster).GetStatusAsync());
    }

    private static async Task<IResult> ListShardsAsync(HttpContext http, IClusterClient cluster)
    {
        RequireAll(http);
        return Results.Ok(await new Pr2Client(cluster).GetShardsAsync());
    }

    private static async Task<IResult> GetShardAsync(int shard, HttpContext http, IClusterClient cluster)
    {
        RequireAll(http);
        var client = new Pr2Client(cluster);
        var entry = (await client.GetShardsAsync()).SingleOrDefault(s => s.Shard == shard)
            ?? throw new Pr2Exception(ErrorCode.UnknownShard, $"shard {shard} is not in the directory");
        return Results.Ok(new ShardView(entry, (await client.GetStatusAsync()).Shards.SingleOrDefault(s => s.Shard == shard)));
    }

    // Answers once the removal is recorded (and moved on as far as it goes at once): sealing and draining take as long as
    // the shard's agents and rule messages need. The caller follows it with GET /removal.
    private static async Task<IResult> RemoveShardAsync(int shard, HttpContext http, IClusterClient cluster)
    {
        RequireAll(http);
        var status = await new Pr2Client(cluster).RemoveShardAsync(shard, wait: false, cancellationToken: http.RequestAborted);
        return Results.Accepted($"/v1/shards/{shard}/removal", status);
    }

    private static async Task<IResult> GetShardRemovalAsync(int shard, HttpContext http, IClusterClient cluster)
    {
        RequireAll(http);
        return Results.Ok(await UnavailableCluster.Answer(() => cluster.GetGrain<IShardRemovalGrain>(shard).Advance(), http.RequestAborted));
    }

    private static async Task<IResult> MovePrimaryAsync(int shard, HttpContext http, IClusterClient cluster)
    {
        RequireAll(http);
        var request = await ReadJsonAsync<PrimaryMoveRequest>(http);
        var replica = request.Replica ?? throw new Pr2Exception(ErrorCode.BadMessage, "give the replica to move the primary to: {\"replica\": 1}");
        return Results.Ok(new PrimaryMoveResponse(shard, await new Pr2Client(cluster).MovePrimaryAsync(shard, replica)));
    }

    // Answers once the replica is recorded joining: catching up takes minutes for a large shard, longer than a request
    // should wait. The caller follows it in the shard's entry (joining) and status (behind).
    private static async Task<IResult> AddReplicaAsync(int shard, HttpContext http, IClusterClient cluster)
    {
        RequireAll(http);
        var request = await ReadJsonAsync<ReplicaAddRequest>(http);
        var connection = request.Connection ?? throw new Pr2Exception(ErrorCode.BadMessage, "give the new replica's configuration key: {\"connection\": \"Pr2:Connections:acme-c\"}");
        var entry = await UnavailableCluster.Answer(() => cluster.GetGrain<IDirectoryGrain>(0).AddReplica(shard, connection), http.RequestAborted);
        return Results.Accepted($"/v1/shards/{shard}", entry);
    }

    private static async Task<IResult> RemoveReplicaAsync(int shard, int replica, HttpContext http, IClusterClient cluster)
    {
        RequireAll(http);
        return Results.Ok(await new Pr2Client(cluster).RemoveReplicaAsync(shard, replica, http.RequestAborted));
    }

    private static async Task<IResult> ListProjectionsAsync(int shard, HttpContext http, IClusterClient cluster)
    {
        RequireAll(http);
        return Results.Ok(await new Pr2Client(cluster).ListProjectionsAsync(shard, http.RequestAborted));
    }

    private static async Task<IResult> GetProjectionAsync(int shard, string projection, HttpContext http, IClusterClient cluster)
    {
        RequireAll(http);
        return Results.Ok(await new Pr2Client(cluster).GetProjectionAsync(shard, projection, http.RequestAborted));
    }

    private static async Task<IResult> RebuildProjectionAsync(int shard, string projection, HttpContext http, IClusterClient cluster, bool restart = false)
    {
        RequireAll(http);
        var status = await UnavailableCluster.Answer(() => cluster.GetGrain<IProjectionsGrain>(shard).Rebuild(projection, restart), http.RequestAborted);
        return Results.Accepted($"/v1/shards/{shard}/projections/{projection}", status);
    }

    private static async Task<IResult> CancelProjectionRebuildAsync(int shard, string projection, HttpContext http, IClusterClient cluster)
    {
        RequireAll(http);
        return Results.Ok(await new Pr2Client(cluster).CancelProjectionRebuildAsync(shard, projection, http.RequestAborted));
    }

    private static async Task<IResult> AddShardAsync(HttpContext http, IClusterClient cluster)
    {
        RequireAll(http);
        var request = await ReadJsonAsync<NewShardRequest>(http);
        var entry = await new Pr2Client(cluster).AddShardAsync(
            new NewShard(request.Shard, request.Connections ?? [], request.AckPolicy, request.Name, request.Owner, request.Labels));
        return Results.Created($"/v1/shards/{entry.Shard}", entry);
    }

    private static async Task<IResult> SetShardMetadataAsync(int shard, HttpContext http, IClusterClient cluster)
    {
        RequireAll(http);
        var request = await ReadJsonAsync<ShardMetadataRequest>(http);
        return Results.Ok(await new Pr2Client(cluster).SetShardMetadataAsync(shard, request.Name, request.Owner, request.Labels));
    }

    private static async Task<IResult> ListRulesAsync(HttpContext http, IClusterClient cluster)
    {
        RequireAll(http);
        return Results.Ok((await new Pr2Client(cluster).GetRulesAsync()).Select(RuleView.From));
    }

    private static async Task<IResult> GetRuleAsync(string name, HttpContext http, IClusterClient cluster)
    {
        RequireAll(http);
        return Results.Ok(RuleView.From(await new Pr2Client(cluster).GetRuleAsync(name)));
    }

    private static async Task<IResult> PutRuleAsync(HttpContext http, IClusterClient cluster)
    {
        RequireAll(http);
        var definition = await ReadJsonAsync<JsonElement>(http);
        return Results.Ok(RuleView.From(await new Pr2Client(cluster).PutRuleAsync(RawText(definition))));
    }

    private static async Task<IResult> SetPausedAsync(string name, bool paused, HttpContext http, IClusterClient cluster)
    {
        RequireAll(http);
        var client = new Pr2Client(cluster);
        return Results.Ok(RuleView.From(paused ? await client.PauseRuleAsync(name) : await client.ResumeRuleAsync(name)));
    }

    private static async Task<IResult> RemoveRuleAsync(string name, HttpContext http, IClusterClient cluster)
    {
        RequireAll(http);
        await new Pr2Client(cluster).RemoveRuleAsync(name); // UnknownRule (404) for a name that is not there
        return Results.NoContent();
    }

    private static string Require(HttpContext http, int shard)
    {
        ShardAccess.Require(http.User, Options(http), shard);
        return ShardAccess.Who(http.User);
    }

    // A caller is always its authenticated identity; what it says of itself can only follow, after a slash.
    private static string SenderOf(string user, string? suffix) => string.IsNullOrEmpty(suffix) ? $"http:{user}" : $"http:{user}/{suffix}";

    private static void RequireAll(HttpContext http) => ShardAccess.RequireAll(http.User, Options(http));

    private static HttpApiOptions Options(HttpContext http) => http.RequestServices.GetRequiredService<IOptions<HttpApiOptions>>().Value;

    // One request is one step of the caller's session: it starts from the token the caller sent.
    private static Pr2Client Session(HttpContext http, IClusterClient cluster)
    {
        var client = new Pr2Client(cluster);
        client.Observe(ReadToken.Parse(http.Request.Headers[ReadTokenHeader].FirstOrDefault()));
        return client;
    }

    private static IResult Answer<T>(HttpContext http, Pr2Client session, T body)
    {
        http.Response.Headers[ReadTokenHeader] = session.SessionToken.ToString();
        return Results.Ok(body);
    }

    private static async Task<T> ReadJsonAsync<T>(HttpContext http)
    {
        var json = http.RequestServices.GetRequiredService<IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions>>().Value.SerializerOptions;
        try
        {
            return await JsonSerializer.DeserializeAsync<T>(http.Request.Body, json, http.RequestAborted)
                ?? throw new Pr2Exception(ErrorCode.BadBody, "the request body is empty (null); send a JSON object");
        }
        catch (JsonException e)
        {
            throw new Pr2Exception(ErrorCode.BadBody, $"the request body is not valid JSON for this endpoint: {e.Message}");
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            // What the reader throws for bytes that are not UTF-8 (or strings that cannot be decoded).
            throw new Pr2Exception(ErrorCode.BadBody, "the request body is not valid UTF-8 JSON text");
        }
    }

    // The reader checks UTF-8 inside strings only when they are decoded, which GetRawText does.
    private static string RawText(JsonElement json)
    {
        try
        {
            return json.GetRawText();
        }
        catch (InvalidOperationException)
        {
            throw new Pr2Exception(ErrorCode.BadBody, "the request body is not valid UTF-8 JSON text");
        }
    }

    private static ReadConsistency Consistency(string? text) =>
        text is null ? ReadConsistency.Session
        : ByName<ReadConsistency>(text) ?? throw new Pr2Exception(ErrorCode.BadMessage, $"consistency must be session, strong or eventual, got '{text}'");

    // A member by its name, any case; numbers are not names.
    private static T? ByName<T>(string? text) where T : struct, Enum =>
        text is not null && !int.TryParse(text, out _) && Enum.TryParse<T>(text, ignoreCase: true, out var value) && Enum.IsDefined(value) ? value : null;
}
