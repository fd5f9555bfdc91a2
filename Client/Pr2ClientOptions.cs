namespace PR2.Client;

/// <summary>How a frontend reaches the cluster. Bound from <c>Pr2:Client</c>.</summary>
public sealed class Pr2ClientOptions
{
    public const string SectionName = "Pr2:Client";

    /// <summary>Silo gateways as <c>host:port</c>; the client uses any that answers.</summary>
    public List<string> Gateways { get; set; } = ["127.0.0.1:30000"];

    /// <summary>Must match the silos' <c>Pr2:Silo:ClusterId</c>.</summary>
    public string ClusterId { get; set; } = "pr2";

    /// <summary>Must match the silos' <c>Pr2:Silo:ServiceId</c>.</summary>
    public string ServiceId { get; set; } = "pr2";
}
