using Microsoft.Extensions.Options;
using Orleans.Concurrency;
using PR2.Grains.Configuration;
using PR2.Grains.Json;
using PR2.Grains.Storage;
using PR2.Grains.Writing;

namespace PR2.Grains;

/// <summary>
/// First inserts without their actor: the message is checked as the actor would check it (envelope, body) and
/// appended as the actor's version 1. The writer's version check, in the commit, is what makes that safe: it
/// refuses version 1 when the actor has entries (<see cref="ErrorCode.StaleActor"/>), and then the message goes
/// to the actor, which reads its journal and refuses (<see cref="ErrorCode.RecordExists"/>, ...) or answers a
/// retry. An actor activation never trusts a missing record it holds (see <see cref="ActorGrain"/>), since an
/// insert may have come this way since. Stateless and reentrant: each silo has its own, and every insert of a
/// shard waits for its commit concurrently, as actors do.
/// </summary>
[StatelessWorker(1)]
[Reentrant]
public sealed class InsertGrain(ShardRegistry shards, TopologyFollower topology, ShardAppender appender, IOptions<WriteOptions> options) : Grain, IInsertGrain
{
    public async Task<WriteAck> Insert(Message message)
    {
        var receiver = message.Receiver ?? throw new Pr2Exception(ErrorCode.BadMessage, "message has no receiver");
        if (receiver.Shard != this.GetPrimaryKeyLong() || !MessageRouting.IsFirstInsert(message))
        {
            return await Actor(receiver).Send(message);
        }

        await topology.KnowsAsync(receiver.Shard);
        await topology.KnowsCauseAsync(message);

        var self = MessageEnvelope.Resolve(shards, receiver.Shard, receiver.ActorId);
        MessageEnvelope.Check(message, self, shards);
        var body = MessageBody.Parse(message.Kind, message.Body, options.Value.MaxBodyBytes);
        var request = new AppendRequest(message, body.Canonical, MessageBody.ContentHash(self, message.Kind, body.Canonical), Version: 1);
        using var budget = new CancellationTokenSource(options.Value.CallTimeout);
        try
        {
            return await appender.AppendAsync(self.Shard, request, budget.Token);
        }
        catch (Pr2Exception e) when (e.Code == ErrorCode.StaleActor)
        {
            // The actor has entries: it decides, from its journal, between a refusal and a retry's first ack.
        }
        catch (OperationCanceledException) when (budget.IsCancellationRequested)
        {
            throw ShardAppender.Unconfirmed(self.Shard, options.Value.CallTimeoutSeconds);
        }

        return await Actor(self).Send(message);
    }

    private IActorGrain Actor(ActorRef actor) => GrainFactory.GetGrain<IActorGrain>(actor.Shard, actor.ActorId, null);
}
