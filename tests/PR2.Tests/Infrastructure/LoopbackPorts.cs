using System.Net;
using System.Net.Sockets;

namespace PR2.Tests.Infrastructure;

/// <summary>Loopback ports for test servers: one the kernel just handed out, free (and closed) when returned.</summary>
public static class LoopbackPorts
{
    public static int Free()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
