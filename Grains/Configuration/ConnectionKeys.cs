using Microsoft.Extensions.Configuration;

namespace PR2.Grains.Configuration;

/// <summary>
/// Connection strings by the configuration key a directory record names (<see cref="ShardEntry.Connections"/>), read
/// from the configuration PR2 was added to the silo with: the directory holds the key, each silo its own secret.
/// </summary>
public sealed class ConnectionKeys(IConfiguration configuration)
{
    /// <summary>The connection string under <paramref name="key"/>, or null when this silo does not have it.</summary>
    public string? Resolve(string key) => configuration[key] is { } value && !string.IsNullOrWhiteSpace(value) ? value : null;
}
