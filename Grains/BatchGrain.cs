using System.Text;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;
using PR2.Grains.Configuration;
using PR2.Grains.Json;
using PR2.Grains.Storage;
using PR2.Grains.Writing;

namespace PR2.Grains;

/// <summary>
/// Atomic batches of one shard: every message is checked as its actor would check it (envelope, body), and the whole
/// batch goes to the shard's journal writer as one unit, which judges each message against its actor's record in batch
/// order and commits all of them in one transaction, or none (<see cref="CommitPlan"/>). Actors are not involved: an
/// actor holding a record the batch moved on finds out at its next append (the writer's version check, StaleActor) and
/// reads its journal again, as after an insert that came through <see cref="InsertGrain"/>. Stateless and reentrant:
/// each silo has its own, and batches wait for their commits concurrently.
/// </summary>
[StatelessWorker(1)]
[Reentrant]
public sealed class BatchGrain(ShardRegistry shards, TopologyFollower topology, ShardAppender appender, IOptions<WriteOptions> options) : Grain, IBatchGrain
{
    public async Task<BatchAck> Send(Message[] messages)
    {
        var shard = (int)this.GetPrimaryKeyLong();
        var limits = options.Value;
        if (messages is null || messages.Length == 0)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, "a batch needs at least one message");
        }

        // A stamp of a shard added a moment ago is one of this cluster's (a few distinct ones: the batch is refused past them).
        foreach (var causeShard in messages.Where(m => m?.CausedBy is not null).Select(m => m.CausedBy!.Value.Shard).Distinct().Take(16))
        {
            await topology.KnowsAsync(causeShard);
        }

        if (!await topology.KnowsAsync(shard))
        {
            throw new Pr2Exception(ErrorCode.UnknownShard, $"shard {shard} is not configured; known shards: {string.Join(", ", shards.ShardCodes)}");
        }

        if (messages.Length > limits.MaxBatchMessages)
        {
            throw new Pr2Exception(ErrorCode.BatchTooLarge,
                $"the batch has {messages.Length} messages; a batch takes at most {limits.MaxBatchMessages} (Pr2:Write:MaxBatchMessages): split it");
        }

        var bytes = messages.Sum(m => m is null ? 0L : Encoding.UTF8.GetByteCount(m.Body ?? ""));
        if (bytes > limits.MaxBatchBytes)
        {
            throw new Pr2Exception(ErrorCode.BatchTooLarge,
                $"the batch's bodies take {bytes} bytes; a batch takes at most {limits.MaxBatchBytes} (Pr2:Write:MaxBatchBytes): split it");
        }

        var requests = new AppendRequest[messages.Length];
        var refusals = new List<MessageRefusal>();
        var ids = new HashSet<Guid>();
        for (var i = 0; i < messages.Length; i++)
        {
            var message = messages[i];
            try
            {
                if (message?.Receiver is null)
                {
                    throw new Pr2Exception(ErrorCode.BadMessage, "message has no receiver");
                }

                if (message.Receiver.Shard != shard)
                {
                    throw new Pr2Exception(ErrorCode.BadMessage, $"message is addressed to shard {message.Receiver.Shard}; a batch goes to one shard ({shard})");
                }

                var self = MessageEnvelope.Resolve(shards, shard, message.Receiver.ActorId);
                MessageEnvelope.Check(message, self, shards);
                if (!ids.Add(message.MessageId))
                {
                    throw new Pr2Exception(ErrorCode.BadMessage, $"MessageId {message.MessageId} appears twice in the batch");
                }

                var body = MessageBody.Parse(message.Kind, message.Body, limits.MaxBodyBytes);
                requests[i] = new AppendRequest(message, body.Canonical, MessageBody.ContentHash(self, message.Kind, body.Canonical), Version: 0);
            }
            catch (Pr2Exception e)
            {
                refusals.Add(new MessageRefusal(i, message?.MessageId ?? Guid.Empty, e.Code, e.Message));
            }
        }

        if (refusals.Count > 0)
        {
            throw new Pr2Exception([.. refusals], messages.Length);
        }

        using var budget = new CancellationTokenSource(limits.CallTimeout);
        try
        {
            return await appender.AppendBatchAsync(shard, requests, budget.Token);
        }
        catch (OperationCanceledException) when (budget.IsCancellationRequested)
        {
            throw ShardAppender.Unconfirmed(shard, limits.CallTimeoutSeconds);
        }
    }
}
