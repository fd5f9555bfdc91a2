namespace PR2.Silo.Http;

/// <summary>The HTTP/JSON API hosted in the silo. Bound from <c>Pr2:Http</c>.</summary>
public sealed class HttpApiOptions
{
    public const string SectionName = "Pr2:Http";

    /// <summary>The address Kestrel listens on: loopback unless set (a non-loopback address requires authentication).</summary>
    public string Address { get; set; } = "127.0.0.1";

    /// <summary>The port (0: any free port, as the test hosts and the benchmark use).</summary>
    public int Port { get; set; } = 8080;

    /// <summary>Keys accepted in the <c>X-Api-Key</c> header, each for some shards.</summary>
    public List<ApiKeyOptions> ApiKeys { get; set; } = [];

    /// <summary>Bearer tokens (JWT, HMAC-SHA256) accepted when <see cref="JwtOptions.SigningKey"/> is set.</summary>
    public JwtOptions Jwt { get; set; } = new();

    /// <summary>How many change streams (Server-Sent Events) one caller may hold open at once; more are refused (429).</summary>
    public int MaxStreamsPerCaller { get; set; } = 8;

    /// <summary>No keys and no JWT: the API is open, which is allowed only on a loopback address.</summary>
    public bool IsOpen => ApiKeys.Count == 0 && string.IsNullOrEmpty(Jwt.SigningKey);
}
