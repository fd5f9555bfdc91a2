using System.Net.Http.Headers;
using System.Net.ServerSentEvents;
using System.Text.Json.Nodes;

namespace PR2.Tests.Infrastructure;

/// <summary>Reads a PR2 change stream (<c>/v1/shards/{shard}/changes</c>) as a browser's EventSource would.</summary>
public static class ServerSentEvents
{
    /// <summary>The first <paramref name="count"/> change events (their JSON and event id), resuming after <paramref name="lastEventId"/> when given.</summary>
    public static async Task<List<(JsonNode Change, string EventId)>> ReadChangesAsync(
        HttpClient http, string path, string? lastEventId, int count, CancellationToken cancellationToken)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        if (lastEventId is not null)
        {
            request.Headers.Add("Last-Event-ID", lastEventId);
        }

        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        response.EnsureSuccessStatusCode();
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var events = new List<(JsonNode, string)>();
        await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
        await foreach (var item in SseParser.Create(stream).EnumerateAsync(cancellationToken))
        {
            Assert.Equal("change", item.EventType);
            Assert.NotNull(item.EventId);
            var change = JsonNode.Parse(item.Data)!;
            Assert.Equal(WatchPosition.Parse(item.EventId).Position, change["position"]!.GetValue<long>());
            events.Add((change, item.EventId));
            if (events.Count == count)
            {
                break;
            }
        }

        return events;
    }
}
