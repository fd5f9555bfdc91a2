namespace PR2.Tests.Infrastructure;

/// <summary>
/// Two throwaway PostgreSQL servers for one test class (a class fixture), so that replicas live on
/// different servers and a test can kill, pause or restart one. At the end both are thawed and stopped,
/// whatever state a test's nemesis left them in.
/// </summary>
public sealed class TwoPostgresServers : IAsyncLifetime
{
    public PostgresFixture A { get; } = new();

    public PostgresFixture B { get; } = new();

    public async Task InitializeAsync() => await Task.WhenAll(A.InitializeAsync(), B.InitializeAsync());

    public async Task DisposeAsync()
    {
        foreach (var server in new[] { A, B })
        {
            try
            {
                await server.Server.ResumeAsync();
            }
            catch (Exception e) when (e is InvalidOperationException or IOException)
            {
                // Not running (stopped by a test): nothing to thaw.
            }
        }

        await Task.WhenAll(A.DisposeAsync(), B.DisposeAsync());
    }
}
