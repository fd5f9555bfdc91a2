namespace PR2.Grains.Writing;

/// <summary>An atomic batch waiting for its group commit: all its entries commit in it, or none.</summary>
internal sealed class PendingBatch(AppendRequest[] requests) : PendingWrite
{
    private readonly TaskCompletionSource<BatchAck> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public override IReadOnlyList<AppendRequest> Requests { get; } = requests;

    public Task<BatchAck> Task => _completion.Task;

    public void Succeed(BatchAck ack) => _completion.TrySetResult(ack);

    public override void Fail(Exception reason) => _completion.TrySetException(reason);
}
