using System.Collections.Concurrent;
using PR2.Client;

namespace PR2.Tests.Infrastructure;

/// <summary>
/// A workload for planned changes (a primary moved, a replica added): writers that each own three actors and write them in
/// turn, a strong reader, and a wait on the acknowledgements; what every client was told goes into a <see cref="ClientHistory"/>.
/// </summary>
public static class SteadyWriters
{
    // One writer owns three actors and writes them in turn, one message at a time, until stopped; every answer goes into
    // the history, and any error at all (a move must not make a write fail, not even retriably) is a problem.
    public static async Task WriteAsync(Pr2Client client, int shard, int writer, ConcurrentBag<WriteAck> acked, ClientHistory history,
        ConcurrentBag<string> problems, CancellationToken stop)
    {
        var actors = Enumerable.Range(0, 3).Select(i => new ActorRef(shard, $"account/{writer}-{i}")).ToList();
        var versions = new int[actors.Count];
        for (var turn = 0; !stop.IsCancellationRequested; turn++)
        {
            var i = turn % actors.Count;
            var message = new Message(Guid.NewGuid(), $"writer-{writer}", actors[i], versions[i] == 0 ? MessageKind.Insert : MessageKind.Modify,
                $$"""{"turn": {{turn}}}""");
            for (var call = 1; ; call++)
            {
                try
                {
                    var ack = await client.SendAsync(message);
                    history.Acknowledged(message, ack, call);
                    acked.Add(ack);
                    versions[i]++;
                    break;
                }
                catch (Pr2Exception e) when (e.IsRetriable && call < 20)
                {
                    problems.Add($"{message.Receiver} call {call}: {e.Code} {e.Message}");
                    await Task.Delay(100, CancellationToken.None);
                }
                catch (Exception e) when (call >= 20 || e is not Pr2Exception { IsRetriable: true })
                {
                    problems.Add($"{message.Receiver} call {call}: {e.GetType().Name} {e.Message}");
                    history.Refusal(message.MessageId, e.Message);
                    return;
                }
            }
        }
    }

    public static async Task ReadStronglyAsync(Pr2Client client, int shard, ClientHistory history, CancellationToken stop)
    {
        var actors = Enumerable.Range(0, 12).Select(w => new ActorRef(shard, $"account/{w}-0")).ToList();
        while (!stop.IsCancellationRequested)
        {
            await history.ReadStronglyAsync(client, actors);
        }
    }

    public static Task WaitForAcksAsync(ConcurrentBag<WriteAck> acked, int count) =>
        Eventually.TrueAsync(() => Task.FromResult(acked.Count >= count), TimeSpan.FromSeconds(60), $"{count} writes acknowledged");
}
