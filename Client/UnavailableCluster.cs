namespace PR2.Client;

/// <summary>
/// Failures of the cluster's transport rather than answers of PR2: a silo or gateway that failed mid-call, a call that
/// timed out, a cancellation the caller did not ask for. A write's outcome is then unknown; callers get
/// <see cref="ErrorCode.Unavailable"/> (retriable with the same MessageId), never Orleans' own exception.
/// </summary>
public static class UnavailableCluster
{
    public const string Message =
        "the cluster did not answer (a silo failed, the call timed out, or its answer could not be read); the outcome is unknown: retry with the same MessageId";

    // An answer that cannot be deserialized (a failure inside the cluster whose type has no codec) says nothing of the
    // outcome either.
    public static bool Is(Exception exception, CancellationToken callerToken = default) =>
        exception is TimeoutException or OrleansException or Orleans.Serialization.SerializerException
        || (exception is OperationCanceledException && !callerToken.IsCancellationRequested);

    /// <summary>
    /// Awaits a cluster call, turning a transport failure into <see cref="ErrorCode.Unavailable"/>. Cancelling
    /// <paramref name="cancellationToken"/> stops the wait (<see cref="OperationCanceledException"/>), not the call.
    /// </summary>
    public static async Task<T> Answer<T>(Func<Task<T>> call, CancellationToken cancellationToken = default)
    {
        try
        {
            return await call().WaitAsync(cancellationToken);
        }
        catch (Exception e) when (e is not Pr2Exception && Is(e, cancellationToken))
        {
            throw new Pr2Exception(ErrorCode.Unavailable, Message, e);
        }
    }
}
