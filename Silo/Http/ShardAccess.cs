using System.Security.Claims;

namespace PR2.Silo.Http;

/// <summary>
/// Per-shard authorization: shards are companies, so a caller may touch only the shards its key or token names
/// (claim <c>pr2_shards</c>: <c>"3"</c>, <c>"3,4"</c>, or <c>"*"</c> for all shards and the cluster-wide endpoints).
/// </summary>
public static class ShardAccess
{
    public const string ClaimType = "pr2_shards";

    /// <summary>Throws <see cref="AccessDeniedException"/> unless <paramref name="user"/> may use <paramref name="shard"/>.</summary>
    public static void Require(ClaimsPrincipal user, HttpApiOptions options, int shard)
    {
        if (!options.IsOpen && !Shards(user).Any(s => s == "*" || s == shard.ToString(System.Globalization.CultureInfo.InvariantCulture)))
        {
            throw new AccessDeniedException($"{Who(user)} may not use shard {shard}");
        }
    }

    /// <summary>Throws unless <paramref name="user"/> may use every shard (status, rules: cluster-wide).</summary>
    public static void RequireAll(ClaimsPrincipal user, HttpApiOptions options)
    {
        if (!options.IsOpen && !Shards(user).Contains("*"))
        {
            throw new AccessDeniedException($"{Who(user)} may not use cluster-wide endpoints (its shards must include \"*\")");
        }
    }

    /// <summary>The name a caller's messages carry as their sender.</summary>
    public static string Who(ClaimsPrincipal user) => user.Identity?.Name is { Length: > 0 } name ? name : "anonymous";

    private static IEnumerable<string> Shards(ClaimsPrincipal user) =>
        user.FindAll(ClaimType).SelectMany(c => c.Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
}
