using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Orleans.Connections.Security;

namespace PR2.Client;

/// <summary>Applies <see cref="ClusterTlsOptions"/> to Orleans' TLS settings, the same way on silos and clients.</summary>
public static class ClusterTls
{
    /// <summary>This side's certificate; a missing or unreadable file names the setting at fault.</summary>
    public static X509Certificate2 LoadCertificate(ClusterTlsOptions options, string section)
    {
        try
        {
            return !string.IsNullOrEmpty(options.KeyPath)
                ? X509Certificate2.CreateFromPemFile(options.CertificatePath, options.KeyPath)
                : X509CertificateLoader.LoadPkcs12FromFile(options.CertificatePath, string.IsNullOrEmpty(options.Password) ? null : options.Password);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
        {
            throw new InvalidOperationException($"{section}:CertificatePath '{options.CertificatePath}' cannot be read as a certificate with its private key: {e.Message}", e);
        }
    }

    /// <summary>Requires a certificate from every peer, in both directions, and accepts only the cluster's own.</summary>
    public static void Configure(TlsOptions tls, X509Certificate2 certificate, ClusterTlsOptions options, string section)
    {
        X509Certificate2? authority = null;
        if (!string.IsNullOrEmpty(options.AuthorityPath))
        {
            try
            {
                authority = X509CertificateLoader.LoadCertificateFromFile(options.AuthorityPath);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
            {
                throw new InvalidOperationException($"{section}:AuthorityPath '{options.AuthorityPath}' cannot be read as a certificate: {e.Message}", e);
            }
        }

        tls.LocalCertificate = certificate;
        tls.RemoteCertificateMode = RemoteCertificateMode.RequireCertificate;
        tls.ClientCertificateMode = RemoteCertificateMode.RequireCertificate;
        tls.RemoteCertificateValidation = (remote, _, _) => IsClusterCertificate(remote, certificate, authority);
    }

    // Silos are reached by address, not by a name in their certificate, so trust is the issuer (or the certificate
    // itself), checked here rather than by the machine's store and host name.
    private static bool IsClusterCertificate(X509Certificate2 remote, X509Certificate2 own, X509Certificate2? authority)
    {
        if (authority is null)
        {
            return remote.RawDataMemory.Span.SequenceEqual(own.RawDataMemory.Span);
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(authority);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(remote);
    }
}
