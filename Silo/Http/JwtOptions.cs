namespace PR2.Silo.Http;

/// <summary>
/// Bearer tokens signed with a shared secret (HS256). The token's <c>pr2_shards</c> claim lists the shards it may
/// use (<c>"3"</c>, <c>"3,4"</c>, or <c>"*"</c>); issuer and audience are checked when set.
/// </summary>
public sealed class JwtOptions
{
    /// <summary>The HMAC secret, at least 32 bytes of text; empty: JWT not accepted.</summary>
    public string SigningKey { get; set; } = "";

    public string Issuer { get; set; } = "";

    public string Audience { get; set; } = "";
}
