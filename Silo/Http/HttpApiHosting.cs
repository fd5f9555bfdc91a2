using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.Tokens;
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
        Validate(options);
        builder.Services.Configure<HttpApiOptions>(builder.Configuration.GetSection(HttpApiOptions.SectionName));
        // A request is a message envelope around a body of at most MaxBodyBytes: refuse far larger ones before
        // reading them (413), instead of buffering Kestrel's default 30 MB.
        var maxBody = builder.Configuration.GetSection(WriteOptions.SectionName).Get<WriteOptions>()?.MaxBodyBytes ?? new WriteOptions().MaxBodyBytes;
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(IPAddress.Parse(options.Address), options.Port);
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
        return options;
    }

    /// <summary>The middleware and endpoints: <c>/v1/...</c> and the OpenAPI document at <c>/openapi/v1.json</c>.</summary>
    public static WebApplication UsePr2HttpApi(this WebApplication app, HttpApiOptions options)
    {
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapOpenApi().AllowAnonymous();
        app.MapPr2HttpApi(options);
        return app;
    }

    private static void Validate(HttpApiOptions options)
    {
        if (!IPAddress.TryParse(options.Address, out var address))
        {
            throw new InvalidOperationException($"{HttpApiOptions.SectionName}:Address must be an IP address, got '{options.Address}'");
        }

        if (options.IsOpen && !IPAddress.IsLoopback(address))
        {
            throw new InvalidOperationException(
                $"{HttpApiOptions.SectionName}:Address {options.Address} is not loopback, so the HTTP API needs authentication: set {HttpApiOptions.SectionName}:ApiKeys or {HttpApiOptions.SectionName}:Jwt:SigningKey");
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
