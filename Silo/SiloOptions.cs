namespace PR2.Silo;

/// <summary>How this silo joins its cluster. Bound from <c>Pr2:Silo</c>.</summary>
public sealed class SiloOptions
{
    public const string SectionName = "Pr2:Silo";

    /// <summary><c>Localhost</c> (a single-machine cluster, the embedded default) or <c>AdoNet</c> (membership in the control shard's database).</summary>
    public string Clustering { get; set; } = "Localhost";

    public string ClusterId { get; set; } = "pr2";

    public string ServiceId { get; set; } = "pr2";

    public int SiloPort { get; set; } = 11111;

    public int GatewayPort { get; set; } = 30000;

    /// <summary>The address other silos and clients reach this silo at (AdoNet clustering); default loopback.</summary>
    public string AdvertisedAddress { get; set; } = "127.0.0.1";

    /// <summary>Mutual TLS on the silo and gateway ports; required when <see cref="AdvertisedAddress"/> is not loopback.</summary>
    public PR2.Client.ClusterTlsOptions Tls { get; set; } = new();
}
