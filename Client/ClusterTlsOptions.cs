namespace PR2.Client;

/// <summary>
/// Mutual TLS between silos and between clients and the gateway (<c>Pr2:Silo:Tls</c> on silos, <c>Pr2:Client:Tls</c>
/// on clients). Every side presents its certificate and accepts only peers whose certificate was issued by
/// <see cref="AuthorityPath"/> (or, without one, peers presenting this very certificate): the cluster's ports then
/// admit only holders of the cluster's certificates, and everything on the wire is encrypted.
/// </summary>
public sealed class ClusterTlsOptions
{
    /// <summary>This side's certificate with its private key: a PKCS#12 file (<c>.pfx</c>/<c>.p12</c>), or a PEM file with <see cref="KeyPath"/>.</summary>
    public string CertificatePath { get; set; } = "";

    /// <summary>The PEM private key, when <see cref="CertificatePath"/> is a PEM certificate.</summary>
    public string KeyPath { get; set; } = "";

    /// <summary>The PKCS#12 file's password, if it has one.</summary>
    public string Password { get; set; } = "";

    /// <summary>The certificate (PEM or DER) of the authority that issues the cluster's certificates; empty: peers must present this side's own certificate.</summary>
    public string AuthorityPath { get; set; } = "";

    public bool IsConfigured => !string.IsNullOrEmpty(CertificatePath);
}
