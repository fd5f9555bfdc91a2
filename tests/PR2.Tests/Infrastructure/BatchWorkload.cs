using Npgsql;
using PR2.Client;

namespace PR2.Tests.Infrastructure;

/// <summary>
/// Atomic batches beside a fault workload: each round, one batch per shard to that shard's <c>lot/*</c> actors (inserts
/// first, then modifies), sent with retries of the same batch on retriable errors. What each client was told is kept:
/// acknowledged batches, batches whose outcome stayed unknown (sent again, whole, next round), refusals (there should be
/// none: the batches are built so that each is accepted when sent again after an unknown outcome). After healing, every
/// replica must hold every acknowledged batch whole and once, and every other batch whole or not at all.
/// </summary>
public sealed class BatchWorkload(IReadOnlyList<int> shards, Func<TimeSpan> callBound)
{
    private const int ActorsPerShard = 6;
    private readonly Dictionary<int, bool> _inserted = shards.ToDictionary(s => s, _ => false);
    private readonly Dictionary<int, (Message[] Messages, int Calls)> _unresolved = [];
    private readonly List<BatchAck> _acked = [];
    private readonly List<Message[]> _unknown = [];
    private readonly List<string> _problems = [];

    public int Acked => _acked.Count;

    /// <summary>What the clients were told that cannot be true: refusals, or a first call answered as a duplicate.</summary>
    public IReadOnlyList<string> Problems => _problems;

    /// <summary>One batch per shard, concurrently; an earlier batch whose outcome is unknown goes again first.</summary>
    public async Task RoundAsync(Pr2Client client, int round)
    {
        var sends = shards.Select(shard =>
        {
            var (messages, calls) = _unresolved.Remove(shard, out var pending) ? pending : (NextBatch(shard, round), 0);
            return SendAsync(client, shard, messages, calls);
        }).ToList();
        await Task.WhenAll(sends);
    }

    /// <summary>The checks against the healed replicas; the problems found, each named.</summary>
    public async Task<List<string>> CheckAsync(Dictionary<int, NpgsqlDataSource[]> replicas)
    {
        var problems = new List<string>(_problems);
        var undecided = _unknown.Concat(_unresolved.Values.Select(u => u.Messages)).ToList();
        foreach (var shard in shards)
        {
            foreach (var (database, index) in replicas[shard].Select((d, i) => (d, i)))
            {
                var held = (await ReplicaContents.MessageIdsAsync(database)).GroupBy(id => id).ToDictionary(g => g.Key, g => g.Count());
                foreach (var ack in _acked.Where(a => a.Acks[0].Actor.Shard == shard))
                {
                    var missing = ack.Acks.Count(a => held.GetValueOrDefault(a.MessageId) != 1);
                    if (missing > 0)
                    {
                        problems.Add($"shard {shard} replica {index}: {missing} of the {ack.Acks.Length} entries of an acknowledged batch (from position {ack.Acks[0].Position}) missing or doubled");
                    }
                }

                foreach (var messages in undecided.Where(m => m[0].Receiver.Shard == shard))
                {
                    var present = messages.Count(m => held.ContainsKey(m.MessageId));
                    if (present != 0 && present != messages.Length)
                    {
                        problems.Add($"shard {shard} replica {index}: a batch of unknown outcome is there in part: {present} of {messages.Length} entries");
                    }
                }
            }
        }

        return problems;
    }

    private Message[] NextBatch(int shard, int round)
    {
        var first = !_inserted[shard];
        _inserted[shard] = true;
        var messages = new List<Message>();
        for (var k = 0; k < ActorsPerShard; k++)
        {
            var actor = new ActorRef(shard, $"lot/{k}");
            messages.Add(new Message(Guid.NewGuid(), "fault-batches", actor, first ? MessageKind.Insert : MessageKind.Modify, $$"""{"round": {{round}}, "k": {{k}}}"""));
            if (k < 2)
            {
                messages.Add(new Message(Guid.NewGuid(), "fault-batches", actor, MessageKind.Modify, $$"""{"again": {{round}}}"""));
            }
        }

        return [.. messages];
    }

    // Retries the same batch on retriable errors up to a deadline; still unknown then, it goes again next round.
    private async Task SendAsync(Pr2Client client, int shard, Message[] messages, int earlierCalls)
    {
        var deadline = DateTime.UtcNow + (callBound() * 2) + TimeSpan.FromSeconds(2);
        for (var call = earlierCalls + 1; ; call++)
        {
            try
            {
                var ack = await client.SendBatchAsync(shard, messages);
                lock (_acked)
                {
                    if (ack.Duplicate && call == 1)
                    {
                        _problems.Add($"shard {shard}: a batch's first call was answered as a duplicate");
                    }

                    _acked.Add(ack);
                }

                return;
            }
            catch (Exception e) when (e is Pr2Exception { IsRetriable: true } or TimeoutException or Orleans.Runtime.SiloUnavailableException
                                          or Orleans.Runtime.OrleansMessageRejectionException)
            {
                if (DateTime.UtcNow > deadline)
                {
                    lock (_acked)
                    {
                        _unresolved[shard] = (messages, call);
                    }

                    return;
                }

                await Task.Delay(200);
            }
            catch (Pr2Exception e)
            {
                lock (_acked)
                {
                    _problems.Add($"shard {shard}: batch refused (call {call}): {e.Code}: {e.Message}");
                    _unknown.Add(messages);
                }

                return;
            }
        }
    }
}
