using PR2.Tests.Failures;
using PR2.Tests.Infrastructure;

namespace PR2.Tests;

/// <summary>
/// A database failure a grain did not catch reaches its caller as PR2's own retriable <see cref="ErrorCode.Unavailable"/>
/// (outcome unknown) naming the kind of failure, never as a driver exception Orleans cannot carry, nor with the server's text.
/// </summary>
[Collection(SharedClusterCollection.Name)]
public sealed class DatabaseFailureFilterTests(SharedClusterFixture fixture)
{
    [Fact]
    public async Task A_server_error_that_escapes_a_grain_is_Unavailable_with_its_SQLSTATE_only()
    {
        var probe = fixture.Cluster.Client.GetGrain<IDatabaseProbeGrain>(1);
        Assert.Equal(1, await probe.Scalar("select 1"));

        // The server's text quotes the data: it stays in the silo's log.
        var error = await Assert.ThrowsAsync<Pr2Exception>(() => probe.Scalar("select 'secret-value'::int"));
        Assert.Equal(ErrorCode.Unavailable, error.Code);
        Assert.True(error.IsRetriable);
        Assert.Contains("PostgreSQL error 22P02", error.Message, StringComparison.Ordinal);
        Assert.Contains("IDatabaseProbeGrain.Scalar", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("secret-value", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_connection_failure_that_escapes_a_grain_is_Unavailable()
    {
        var probe = fixture.Cluster.Client.GetGrain<IDatabaseProbeGrain>(2);
        var nobody = $"Host=127.0.0.1;Port={LoopbackPorts.Free()};Username=pr2;Password=x;Timeout=2";

        var error = await Assert.ThrowsAsync<Pr2Exception>(() => probe.Connect(nobody));
        Assert.Equal(ErrorCode.Unavailable, error.Code);
        Assert.Contains("connection failed", error.Message, StringComparison.Ordinal);
    }
}
