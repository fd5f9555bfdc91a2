namespace PR2.Silo;

/// <summary>How this silo joins its cluster. Bound from <c>Pr2:Silo</c>.</summary>
public sealed class SiloOptions
{
    public const string SectionName = "Pr2:Silo";

    /// <summary><c>Localhost</c> (a single-machine cluster, the embedded default) or <c>AdoNet</c> (membership in a PostgreSQL database).</summary>
    public string Clustering { get; set; } = "Localhost";

    /// <summary>
    /// Where AdoNet clustering keeps membership: a connection string (e.g. an HA server, or a multi-host string with
    /// <c>Target Session Attributes=primary</c>). Empty means the control shard's first replica, which then stops
    /// silos from joining while that one server is down.
    /// </summary>
    public string? Membership { get; set; }

    /// <summary>
    /// Assemblies (paths) whose C# rules (<c>IRule</c> implementations) this silo registers, so the stock silo runs
    /// rules compiled apart from it. Every silo of a cluster must load the same ones.
    /// </summary>
    public List<string> RuleAssemblies { get; set; } = [];

    /// <summary>Full type names of the rules to take from <see cref="RuleAssemblies"/>; empty takes every one they hold.</summary>
    public List<string> Rules { get; set; } = [];

    /// <summary>
    /// Assemblies (paths) whose grains this silo hosts beside PR2's own, e.g. journal stream subscribers
    /// (<c>[ImplicitStreamSubscription("pr2/&lt;type&gt;")]</c>). Every silo of a cluster must load the same ones: the
    /// silo reading a shard's journal delivers only to the implicit subscribers whose classes it knows.
    /// </summary>
    public List<string> GrainAssemblies { get; set; } = [];

    public string ClusterId { get; set; } = "pr2";

    public string ServiceId { get; set; } = "pr2";

    public int SiloPort { get; set; } = 11111;

    public int GatewayPort { get; set; } = 30000;

    /// <summary>The address other silos and clients reach this silo at (AdoNet clustering); default loopback.</summary>
    public string AdvertisedAddress { get; set; } = "127.0.0.1";

    /// <summary>Mutual TLS on the silo and gateway ports; required when <see cref="AdvertisedAddress"/> is not loopback.</summary>
    public PR2.Client.ClusterTlsOptions Tls { get; set; } = new();
}
