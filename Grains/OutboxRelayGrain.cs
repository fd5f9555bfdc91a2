using Microsoft.Extensions.Logging;
using Npgsql;
using Orleans.Concurrency;
using PR2.Grains.Storage;

namespace PR2.Grains;

/// <summary>
/// Delivers one shard's outboxes (messages written by rules, one outbox per replica) to the target actors, in the
/// order they were written, one at a time. Every replica runs the rules over its own journal, so each outbox holds the
/// same messages under the same MessageIds: the receiver keeps the first copy and answers the others as duplicates,
/// exactly once in effect, and a fail-over loses none because the new primary's outbox has them too. The primary's
/// outbox (as this silo knows it) is delivered at once; the others' only after <see cref="StandbyDelay"/>, so that in
/// the common case their copies are answered as duplicates rather than sent in a race. A refusal by the receiver (say,
/// an insert for an actor that exists) is recorded on the row and not retried; an unavailable target shard is retried
/// on the next wake-up, and only the rows for that shard wait (per-target order is kept).
/// </summary>
[Reentrant]
public sealed class OutboxRelayGrain(ShardRegistry shards, TopologyFollower topology, ILogger<OutboxRelayGrain> logger) : Grain, IOutboxRelayGrain
{
    private static readonly TimeSpan TimerPeriod = TimeSpan.FromSeconds(1);
    private const int Page = 100;

    /// <summary>How old a message in a replica that is not the primary must be before that replica's copy is sent.</summary>
    public static readonly TimeSpan StandbyDelay = TimeSpan.FromSeconds(5);

    // One drain per replica outbox, so that a replica whose server hangs holds up only its own copies.
    private readonly Dictionary<int, Task<int>> _draining = [];
    private readonly HashSet<int> _wanted = [];

    // Per replica, passes in a row that could not read its outbox. Perhaps only this silo cannot reach that server (cut
    // off from it): after a few the activation goes, so that the next wake-up may place it on a silo that can.
    private readonly Dictionary<int, int> _unreachable = [];
    private const int UnreachableBeforeMoving = 3;

    private int ShardCode => (int)this.GetPrimaryKeyLong();

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        this.RegisterGrainTimer(_ =>
        {
            if (shards.IsRemoved(ShardCode))
            {
                DeactivateOnIdle(); // a removed shard's outboxes were drained before it was released
                return Task.CompletedTask;
            }

            return Wake();
        }, new GrainTimerCreationOptions(TimerPeriod, TimerPeriod) { KeepAlive = true, Interleave = true });
        // A shard added a moment ago on another silo may not have reached this one: the directory says.
        return topology.KnowsAsync(this.GetPrimaryKeyLong());
    }

    public Task Wake()
    {
        StartDrains(StandbyDelay);
        return Task.CompletedTask;
    }

    public async Task<int> DeliverNow()
    {
        var total = 0;
        while (_draining.Count > 0)
        {
            total += (await Task.WhenAll(_draining.Values)).Sum();
        }

        StartDrains(TimeSpan.Zero);
        return total + (await Task.WhenAll(_draining.Values)).Sum();
    }

    private void StartDrains(TimeSpan standbyDelay)
    {
        var set = shards.Get(ShardCode);
        foreach (var replica in set.Live)
        {
            _wanted.Add(replica);
            if (!_draining.ContainsKey(replica))
            {
                _draining[replica] = DrainAsync(replica, standbyDelay);
            }
        }
    }

    private async Task<int> DrainAsync(int replica, TimeSpan standbyDelay)
    {
        await Task.Yield();
        var total = 0;
        try
        {
            while (_wanted.Remove(replica))
            {
                var set = shards.Get(ShardCode);
                await FollowPrimaryAsync(set);
                total += await DrainReplicaAsync(set.Replicas[replica], replica, replica == set.PrimaryIndex ? TimeSpan.Zero : standbyDelay);
            }
        }
        finally
        {
            _draining.Remove(replica);
        }

        return total;
    }

    // Which outbox goes first only saves duplicate sends, so a writer that does not answer now changes nothing.
    private async Task FollowPrimaryAsync(ShardReplicaSet set)
    {
        try
        {
            await CurrentPrimary.AskAsync(GrainFactory, set, TimeSpan.FromSeconds(1));
        }
        catch (Pr2Exception)
        {
        }
    }

    // One replica's outbox; a replica that cannot be reached is tried again on the next wake-up, the others go on.
    private async Task<int> DrainReplicaAsync(NpgsqlDataSource source, int replica, TimeSpan minimumAge)
    {
        var total = 0;
        var waiting = new HashSet<int>();
        try
        {
            while (await DeliverPageAsync(source, minimumAge, waiting) is var (seen, settled) && seen > 0)
            {
                total += settled;
            }

            _unreachable.Remove(replica);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            Log.RelayFailed(logger, e, ShardCode);
            if ((_unreachable[replica] = _unreachable.GetValueOrDefault(replica) + 1) >= UnreachableBeforeMoving)
            {
                DeactivateOnIdle();
            }
        }

        return total;
    }

    // Returns how many rows it read and how many of those it settled (delivered or refused). Rows for a target shard that
    // did not answer this pass (in waiting) are left for the next pass, and so are the ones after them for that shard.
    private async Task<(int Seen, int Settled)> DeliverPageAsync(NpgsqlDataSource source, TimeSpan minimumAge, HashSet<int> waiting)
    {
        var pending = new List<Message>();
        await using (var command = source.CreateCommand("""
            select message_id, rule, target_shard, target_actor, kind, body::text, caused_counter, caused_shard, hops
            from pr2_outbox where delivered_at is null and failure is null and created_at <= now() - $2 and target_shard <> all($3)
            order by created_at, source_position, action_index limit $1
            """))
        {
            command.Parameters.Add(new NpgsqlParameter { Value = Page });
            command.Parameters.Add(new NpgsqlParameter { Value = minimumAge });
            command.Parameters.Add(new NpgsqlParameter { Value = waiting.ToArray() });
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                var receiver = new ActorRef(reader.GetInt32(2), reader.GetString(3));
                pending.Add(new Message(reader.GetGuid(0), $"rule:{reader.GetString(1)[Rules.RuleAgent.Prefix.Length..]}", receiver,
                    (MessageKind)reader.GetInt16(4), reader.GetString(5), null, new LamportStamp(reader.GetInt64(6), reader.GetInt32(7)), reader.GetInt16(8)));
            }
        }

        var settled = 0;
        foreach (var message in pending.Where(m => !waiting.Contains(m.Receiver.Shard)))
        {
            string? failure = null, conflict = null;
            try
            {
                // A row written before rules were checked (a malformed actor id from a C# rule, or one of PR2's own
                // actors) is settled as failed, never delivered and never left to block the rows behind it.
                if (!ActorRef.TryValidate(message.Receiver.Shard, message.Receiver.ActorId, out var problem))
                {
                    throw new Pr2Exception(ErrorCode.BadActorId, $"\"{message.Receiver.ActorId}\": {problem}");
                }

                if (message.Receiver.IsReserved)
                {
                    throw new Pr2Exception(ErrorCode.ReservedActor, $"{message.Receiver}: {Rules.RuleEffects.ReservedActorRefusal}");
                }

                await GrainFactory.SendMessage(message);
            }
            catch (Pr2Exception e) when (e.Code == ErrorCode.IdempotencyConflict)
            {
                // The id names this rule's effect of one source entry: another replica's copy (its record-dependent
                // parts computed there) took effect first. The effect happened once: this copy is settled, and says so.
                conflict = e.Message;
            }
            catch (Pr2Exception e) when (!e.IsRetriable)
            {
                failure = $"{e.Code}: {e.Message}";
            }
            catch (Exception e) when (e is Pr2Exception or TimeoutException or OrleansException)
            {
                // Retriable: the target shard is unavailable now. Its later rows wait with it; other targets go on.
                Log.RelayFailed(logger, e, ShardCode);
                waiting.Add(message.Receiver.Shard);
                continue;
            }

            await using var settle = source.CreateCommand(failure is null
                ? "update pr2_outbox set delivered_at = now(), conflict = $2 where message_id = $1"
                : "update pr2_outbox set failure = $2 where message_id = $1");
            settle.Parameters.Add(new NpgsqlParameter { Value = message.MessageId });
            settle.Parameters.Add(new NpgsqlParameter { Value = (object?)(failure ?? conflict) ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
            await settle.ExecuteNonQueryAsync();
            settled++;
        }

        return (pending.Count, settled);
    }
}
