using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.Tokens;
using Orleans.Dashboard;
using PR2.Grains.Configuration;

namespace PR2.Silo.Http;

/// <summary>How the silo hosts the HTTP/JSON API; shared by Program and the HTTP tests.</summary>
public static class HttpApiHosting
{
    private const string Scheme = "pr2";

    /// <summary>Kestrel on <c>Pr2:Http:Address</c>:<c>Port</c>, JSON, problem details, OpenAPI, and API-key / JWT authentication.</summary>
    public static HttpApiOptions AddPr2HttpApi(this WebApplicationBuilder builder)
    {
        var options = builder.Configuration.GetSection(HttpApiOptions.SectionName).Get<HttpApiOptions>() ?? new HttpApiOptions();
        // ASP.NET Core's own settings (ASPNETCORE_URLS, --urls, Kestrel:Endpoints with HTTPS certificates) take over the
        // binding when given; otherwise Pr2:Http:Address and Port.
        var aspNetUrls = AspNetCoreUrls(builder.Configuration);
        Validate(options, aspNetUrls);
        builder.Services.Configure<HttpApiOptions>(builder.Configuration.GetSection(HttpApiOptions.SectionName));
        // A request is a message envelope around a body of at most MaxBodyBytes: refuse far larger ones before
        // reading them (413), instead of buffering Kestrel's default 30 MB.
        var maxBody = builder.Configuration.GetSection(WriteOptions.SectionName).Get<WriteOptions>()?.MaxBodyBytes ?? new WriteOptions().MaxBodyBytes;
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            if (aspNetUrls.Count == 0)
            {
                Listen(kestrel, options);
            }

            kestrel.Limits.MaxRequestBodySize = (4L * maxBody) + (64 * 1024);
        });
        builder.Services.ConfigureHttpJsonOptions(json =>
        {
            json.SerializerOptions.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower));
            json.SerializerOptions.RespectRequiredConstructorParameters = true;
        });
        builder.Services.AddSingleton<StreamLimiter>();
        builder.Services.AddProblemDetails();
        builder.Services.AddExceptionHandler<ProblemExceptionHandler>();
        builder.Services.AddOpenApi();

        var authentication = builder.Services.AddAuthentication(Scheme)
            .AddPolicyScheme(Scheme, "API key or bearer token", policy => policy.ForwardDefaultSelector = http =>
                // Without a signing key there is no bearer scheme: a bearer token is then simply not a credential (401).
                !string.IsNullOrEmpty(options.Jwt.SigningKey)
                && http.Request.Headers.Authorization.FirstOrDefault()?.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) == true
                    ? JwtBearerDefaults.AuthenticationScheme
                    : ApiKeyAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        if (!string.IsNullOrEmpty(options.Jwt.SigningKey))
        {
            authentication.AddJwtBearer(jwt =>
            {
                jwt.MapInboundClaims = false;
                jwt.TokenValidationParameters = new TokenValidationParameters
                {
                    IssuerSigningKey = new SymmetricSecurityKey(Encoding.UTF8.GetBytes(options.Jwt.SigningKey)),
                    ValidAlgorithms = [SecurityAlgorithms.HmacSha256],
                    ValidateIssuer = options.Jwt.Issuer.Length > 0,
                    ValidIssuer = options.Jwt.Issuer,
                    ValidateAudience = options.Jwt.Audience.Length > 0,
                    ValidAudience = options.Jwt.Audience,
                    NameClaimType = "sub",
                };
            });
        }

        builder.Services.AddAuthorization();
        builder.Services.AddPr2HealthChecks();
        builder.AddPr2Observability();
        return options;
    }

    /// <summary>The middleware and endpoints: <c>/v1/...</c>, the OpenAPI document at <c>/openapi/v1.json</c> and its explorer at <c>/docs</c>.</summary>
    public static WebApplication UsePr2HttpApi(this WebApplication app, HttpApiOptions options)
    {
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapOpenApi().AllowAnonymous();
        // An API explorer over that document at /docs: Swagger UI, its assets served from the package (no CDN).
        app.UseSwaggerUI(ui =>
        {
            ui.RoutePrefix = "docs";
            ui.SwaggerEndpoint("../openapi/v1.json", "PR2 v1");
            ui.DocumentTitle = "PR2 HTTP API";
        });
        app.MapPr2HealthChecks();
        app.MapPr2Metrics();
        // The Orleans Dashboard, behind the API's own authentication when keys or JWT are configured.
        // Not part of PR2's API: kept out of its OpenAPI document.
        var dashboard = app.MapOrleansDashboard("/dashboard").ExcludeFromDescription();
        if (!options.IsOpen)
        {
            dashboard.RequireAuthorization();
        }

        app.MapPr2StatusPage();
        app.MapPr2HttpApi(options);
        return app;
    }

    // The URLs ASP.NET Core would bind by its own settings: --urls / ASPNETCORE_URLS ("urls") and Kestrel:Endpoints:*:Url.
    private static List<string> AspNetCoreUrls(IConfiguration configuration) =>
    [
        .. (configuration["urls"] ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
        .. configuration.GetSection("Kestrel:Endpoints").GetChildren().Select(e => e["Url"]).OfType<string>(),
    ];

    private static void Listen(Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions kestrel, HttpApiOptions options)
    {
        if (IsAnyAddress(options.Address))
        {
            kestrel.ListenAnyIP(options.Port);
        }
        else if (options.Address == "localhost")
        {
            kestrel.ListenLocalhost(options.Port);
        }
        else
        {
            kestrel.Listen(IPAddress.TryParse(options.Address, out var address) ? address : Dns.GetHostAddresses(options.Address).First(), options.Port);
        }
    }

    private static bool IsAnyAddress(string address) => address is "0.0.0.0" or "*" or "+";

    // Loopback means only this machine can call: "localhost", 127.0.0.0/8, ::1.
    private static bool IsLoopback(string host) =>
        host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || (IPAddress.TryParse(host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));

    private static void Validate(HttpApiOptions options, List<string> aspNetUrls)
    {
        // CheckHostName knows IP addresses and host names (localhost included); 0.0.0.0's aliases are Kestrel's.
        if (aspNetUrls.Count == 0 && !IsAnyAddress(options.Address) && Uri.CheckHostName(options.Address) == UriHostNameType.Unknown)
        {
            throw new InvalidOperationException($"{HttpApiOptions.SectionName}:Address must be an IP address, a host name or 0.0.0.0, got '{options.Address}'");
        }

        var hosts = aspNetUrls.Count > 0
            ? aspNetUrls.Select(url => Uri.TryCreate(url.Replace("://*", "://0.0.0.0", StringComparison.Ordinal).Replace("://+", "://0.0.0.0", StringComparison.Ordinal), UriKind.Absolute, out var uri) ? uri.Host : url)
            : [options.Address];
        if (options.IsOpen && hosts.FirstOrDefault(host => !IsLoopback(host)) is { } open)
        {
            throw new InvalidOperationException(
                $"{HttpApiOptions.SectionName}: the API would listen on {open}, which is not loopback, so it needs authentication: set {HttpApiOptions.SectionName}:ApiKeys or {HttpApiOptions.SectionName}:Jwt:SigningKey");
        }

        foreach (var key in options.ApiKeys)
        {
            if (key.Key.Length < 16 || key.Name.Length == 0 || key.Shards.Count == 0)
            {
                throw new InvalidOperationException(
                    $"{HttpApiOptions.SectionName}:ApiKeys: every key needs a Name, a Key of at least 16 characters and Shards (codes or \"*\"); '{key.Name}' does not");
            }
        }

        if (options.MaxStreamsPerCaller < 1)
        {
            throw new InvalidOperationException($"{HttpApiOptions.SectionName}:MaxStreamsPerCaller must be at least 1, got {options.MaxStreamsPerCaller}");
        }

        if (options.Jwt.SigningKey.Length is > 0 and < 32)
        {
            throw new InvalidOperationException($"{HttpApiOptions.SectionName}:Jwt:SigningKey must be at least 32 characters");
        }
    }
}
