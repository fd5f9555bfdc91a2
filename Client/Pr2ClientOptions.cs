namespace PR2.Client;

/// <summary>How a frontend reaches the cluster. Bound from <c>Pr2:Client</c>.</summary>
public sealed class Pr2ClientOptions
{
    public const string SectionName = "Pr2:Client";

    /// <summary>The gateway used when none is configured: a silo on this machine with its default gateway port.</summary>
    public const string DefaultGateway = "127.0.0.1:30000";

    /// <summary>
    /// Silo gateways as <c>host:port</c>; the client uses any that answers. Empty means <see cref="DefaultGateway"/>.
    /// (Not pre-filled: configuration binding adds to a list's initial items, so a configured gateway would have come
    /// on top of the default, and the client would have kept trying a gateway that is not there.)
    /// </summary>
    public List<string> Gateways { get; set; } = [];

    /// <summary>The gateways to use: the configured ones, or <see cref="DefaultGateway"/> when none is.</summary>
    public IReadOnlyList<string> EffectiveGateways => Gateways.Count > 0 ? Gateways : [DefaultGateway];

    /// <summary>Must match the silos' <c>Pr2:Silo:ClusterId</c>.</summary>
    public string ClusterId { get; set; } = "pr2";

    /// <summary>Must match the silos' <c>Pr2:Silo:ServiceId</c>.</summary>
    public string ServiceId { get; set; } = "pr2";

    /// <summary>
    /// The cluster's membership database (the silos' <c>Pr2:Silo:Membership</c>, or shard 0's first replica when they
    /// keep it there): when set, gateways are found there and followed as silos come and go, as Orleans clients
    /// normally do, instead of the static <see cref="Gateways"/>.
    /// </summary>
    public string? Membership { get; set; }

    /// <summary>Retries of retriable refusals (off unless <see cref="Pr2RetryOptions.MaxAttempts"/> is above 1).</summary>
    public Pr2RetryOptions Retry { get; set; } = new();

    /// <summary>Mutual TLS to the gateway: needed when the silos use <c>Pr2:Silo:Tls</c>.</summary>
    public ClusterTlsOptions Tls { get; set; } = new();
}
