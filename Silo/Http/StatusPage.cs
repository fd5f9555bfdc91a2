using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace PR2.Silo.Http;

/// <summary>
/// The PR2 status page at <c>/</c>: shards, replicas and their states, heads, agent marks and lag, silos, and a chart
/// of acks/s and lag, refreshed every 2 s from <c>/v1/status</c> and <c>/metrics</c>. The page itself holds no data
/// (anonymous); its calls carry the API key typed into it when the API needs one.
/// </summary>
public static class StatusPage
{
    private static readonly Lazy<byte[]> Html = new(() =>
    {
        using var stream = typeof(StatusPage).Assembly.GetManifestResourceStream("pr2.status.html")!;
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    });

    public static void MapPr2StatusPage(this IEndpointRouteBuilder app) =>
        app.MapGet("/", () => Results.Bytes(Html.Value, "text/html; charset=utf-8")).AllowAnonymous().ExcludeFromDescription();
}
