using System.Diagnostics;

namespace PR2.Grains;

/// <summary>
/// Counts every write where it enters the silo (an actor's <c>Send</c> or a shard's insert path), once: acks with their
/// latency, and refusals by code. A write the insert path hands on to its actor is counted at the insert path only.
/// </summary>
public sealed class WriteMetricsFilter : IIncomingGrainCallFilter
{
    private const string Counted = "pr2.write-counted";

    // Every grain call passes here: anything but a write goes straight on, without an async frame of its own.
    public Task Invoke(IIncomingGrainCallContext context) =>
        context.Grain is ActorGrain or InsertGrain && RequestContext.Get(Counted) is null
        && context.Request.GetArgumentCount() == 1 && context.Request.GetArgument(0) is Message message
            ? CountAsync(context, message)
            : context.Invoke();

    private static async Task CountAsync(IIncomingGrainCallContext context, Message message)
    {
        RequestContext.Set(Counted, true);
        var started = Stopwatch.GetTimestamp();
        var shard = new KeyValuePair<string, object?>("shard", message.Receiver?.Shard ?? -1);
        try
        {
            await context.Invoke();
            if (context.Result is WriteAck ack)
            {
                Pr2Metrics.Acks.Add(1, shard, new("kind", message.Kind.ToString()), new("duplicate", ack.Duplicate));
                Pr2Metrics.AckDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, shard);
            }
        }
        catch (Pr2Exception e)
        {
            Pr2Metrics.Refusals.Add(1, new("code", e.Code.ToString()), new("retriable", e.IsRetriable));
            throw;
        }
        finally
        {
            RequestContext.Remove(Counted);
        }
    }
}
