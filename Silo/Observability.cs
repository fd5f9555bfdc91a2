using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using PR2.Grains;

namespace PR2.Silo;

/// <summary>
/// Metrics and traces through OpenTelemetry: PR2's meter with Orleans', Npgsql's and ASP.NET Core's, scraped at
/// <c>GET /metrics</c> (Prometheus text), and both metrics and traces sent by OTLP when
/// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set. A trace follows an HTTP request through its grain calls (Orleans
/// activity propagation) to its PostgreSQL commands.
/// </summary>
public static class Observability
{
    private static readonly string[] Meters =
    [
        Pr2Metrics.MeterName, PR2.Client.WatchMetrics.MeterName, "Microsoft.Orleans", "Npgsql",
        "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel", "System.Runtime",
    ];

    public static WebApplicationBuilder AddPr2Observability(this WebApplicationBuilder builder)
    {
        var otlp = !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT"));
        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService("pr2-silo"))
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(Meters).AddPrometheusExporter();
                if (otlp)
                {
                    metrics.AddOtlpExporter();
                }
            });
        if (otlp)
        {
            // Only with somewhere to send them: a tracer listening with no exporter would record a span for every grain
            // call and command for nothing (measured: up to 18% more silo CPU per message).
            telemetry.WithTracing(tracing => tracing
                .AddSource(Pr2Metrics.MeterName, "Microsoft.Orleans.Runtime", "Microsoft.Orleans.Application")
                .AddAspNetCoreInstrumentation()
                .AddNpgsql()
                .AddOtlpExporter());
        }
        builder.Services.AddHostedService<StatusSampler>();
        return builder;
    }

    public static void MapPr2Metrics(this WebApplication app) => app.MapPrometheusScrapingEndpoint("/metrics").AllowAnonymous();
}
