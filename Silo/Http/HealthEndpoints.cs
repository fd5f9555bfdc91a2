using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace PR2.Silo.Http;

/// <summary>
/// <c>GET /healthz</c> (liveness) and <c>GET /ready</c> (readiness) for Kubernetes probes and load balancers: ASP.NET
/// Core health checks, anonymous, answering JSON (<c>status</c> and each check's description and data).
/// </summary>
public static class HealthEndpoints
{
    private const string Live = "live";
    private const string Ready = "ready";

    public static IServiceCollection AddPr2HealthChecks(this IServiceCollection services)
    {
        services.AddHealthChecks()
            .AddCheck<SiloLivenessCheck>("silo", tags: [Live, Ready])
            .AddCheck<SiloReadinessCheck>("cluster", tags: [Ready]);
        return services;
    }

    public static void MapPr2HealthChecks(this WebApplication app)
    {
        app.MapHealthChecks("/healthz", Options(Live)).AllowAnonymous();
        app.MapHealthChecks("/ready", Options(Ready)).AllowAnonymous();
    }

    private static HealthCheckOptions Options(string tag) => new()
    {
        Predicate = check => check.Tags.Contains(tag),
        ResponseWriter = WriteAsync,
    };

    private static Task WriteAsync(HttpContext http, HealthReport report)
    {
        http.Response.ContentType = "application/json";
        return http.Response.WriteAsync(JsonSerializer.Serialize(new
        {
            status = report.Status.ToString(),
            checks = report.Entries.ToDictionary(e => e.Key, e => new
            {
                status = e.Value.Status.ToString(),
                description = e.Value.Description,
                data = e.Value.Data,
            }),
        }));
    }
}
