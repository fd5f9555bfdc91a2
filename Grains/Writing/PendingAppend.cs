namespace PR2.Grains.Writing;

/// <summary>An append waiting for its group commit; completed after the commit (or with the reason it failed).</summary>
internal sealed class PendingAppend(AppendRequest request)
{
    private readonly TaskCompletionSource<WriteAck> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public AppendRequest Request { get; } = request;

    public Task<WriteAck> Task => _completion.Task;

    public void Succeed(WriteAck ack) => _completion.TrySetResult(ack);

    public void Fail(Exception reason) => _completion.TrySetException(reason);
}
