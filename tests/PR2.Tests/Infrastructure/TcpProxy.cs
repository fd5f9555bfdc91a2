using System.Net;
using System.Net.Sockets;

namespace PR2.Tests.Infrastructure;

/// <summary>
/// A loopback TCP proxy in front of one server, for one client (a silo): a test can black-hole it (bytes stop in
/// both directions and new connections get no answer, as in a network partition: nothing is reset, so the client
/// only learns by its own timeouts) and heal it (held bytes then flow, as TCP retransmission would deliver them).
/// </summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _targetPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<TcpClient> _connections = [];
    private readonly Task _accepting;
    private TaskCompletionSource _open = NewOpen(completed: true);

    public TcpProxy(int targetPort)
    {
        _targetPort = targetPort;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    /// <summary>The port clients connect to instead of the server's.</summary>
    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public void BlackHole()
    {
        lock (_connections)
        {
            if (_open.Task.IsCompleted)
            {
                _open = NewOpen(completed: false);
            }
        }
    }

    public void Heal()
    {
        lock (_connections)
        {
            _open.TrySetResult();
        }
    }

    private static TaskCompletionSource NewOpen(bool completed)
    {
        var open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (completed)
        {
            open.SetResult();
        }

        return open;
    }

    private Task WhenOpen()
    {
        lock (_connections)
        {
            return _open.Task;
        }
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            _ = RelayAsync(client);
        }
    }

    private async Task RelayAsync(TcpClient client)
    {
        using var server = new TcpClient();
        lock (_connections)
        {
            _connections.Add(client);
            _connections.Add(server);
        }

        try
        {
            // A connection made during a partition is not answered until it heals.
            await WhenOpen().WaitAsync(_stop.Token);
            await server.ConnectAsync(IPAddress.Loopback, _targetPort, _stop.Token);
            await Task.WhenAny(PumpAsync(client.GetStream(), server.GetStream()), PumpAsync(server.GetStream(), client.GetStream()));
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or IOException or ObjectDisposedException)
        {
            // The server refused (down) or the proxy stops: close the client's side as a failed connection would.
        }
        finally
        {
            client.Dispose();
            lock (_connections)
            {
                _connections.Remove(client);
                _connections.Remove(server);
            }
        }
    }

    private async Task PumpAsync(NetworkStream from, NetworkStream to)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var read = await from.ReadAsync(buffer, _stop.Token);
                if (read == 0)
                {
                    return;
                }

                await WhenOpen().WaitAsync(_stop.Token);
                await to.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or IOException or ObjectDisposedException)
        {
            // One side closed, or the proxy stops.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        lock (_connections)
        {
            foreach (var connection in _connections)
            {
                connection.Dispose();
            }
        }

        await _accepting;
        _stop.Dispose();
    }
}
