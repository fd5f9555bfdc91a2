using Microsoft.Extensions.Logging;
using Npgsql;
using Orleans.Concurrency;
using PR2.Grains.Storage;

namespace PR2.Grains;

/// <summary>
/// Delivers one shard's outbox (messages written by rules) to the target actors, in the order they were
/// written, one at a time. Each message keeps the MessageId the rule derived, so delivering it again (after a
/// crash between send and marking it delivered, or a replay) is answered with the first acknowledgement:
/// exactly once in effect. A refusal by the receiver (say, an insert for an actor that exists) is recorded
/// on the row and not retried; an unavailable shard is retried on the next wake-up.
/// </summary>
[Reentrant]
public sealed class OutboxRelayGrain(ShardRegistry shards, ILogger<OutboxRelayGrain> logger) : Grain, IOutboxRelayGrain
{
    private static readonly TimeSpan TimerPeriod = TimeSpan.FromSeconds(1);
    private const int Page = 100;

    private Task<int>? _draining;
    private bool _wanted;

    private int ShardCode => (int)this.GetPrimaryKeyLong();

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        this.RegisterGrainTimer(_ => Wake(), new GrainTimerCreationOptions(TimerPeriod, TimerPeriod) { KeepAlive = true, Interleave = true });
        return Task.CompletedTask;
    }

    public Task Wake()
    {
        _wanted = true;
        _draining ??= DrainAsync();
        return Task.CompletedTask;
    }

    public async Task<int> DeliverNow()
    {
        var total = 0;
        while (_draining is { } running)
        {
            total += await running;
        }

        _wanted = true;
        _draining = DrainAsync();
        return total + await _draining;
    }

    private async Task<int> DrainAsync()
    {
        await Task.Yield();
        var total = 0;
        try
        {
            while (_wanted)
            {
                _wanted = false;
                int delivered;
                while ((delivered = await DeliverPageAsync()) > 0)
                {
                    total += delivered;
                }
            }
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException || e is Pr2Exception { IsRetriable: true })
        {
            Log.RelayFailed(logger, e, ShardCode);
        }
        finally
        {
            _draining = null;
        }

        return total;
    }

    // Returns how many rows it settled (delivered or refused).
    private async Task<int> DeliverPageAsync()
    {
        var source = shards.Get(ShardCode).Primary;
        var pending = new List<(Message Message, long Position)>();
        await using (var command = source.CreateCommand("""
            select message_id, rule, target_shard, target_actor, kind, body::text, caused_counter, caused_shard, source_position, hops
            from pr2_outbox where delivered_at is null and failure is null
            order by created_at, source_position, action_index limit $1
            """))
        {
            command.Parameters.Add(new NpgsqlParameter { Value = Page });
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                var receiver = new ActorRef(reader.GetInt32(2), reader.GetString(3));
                pending.Add((new Message(reader.GetGuid(0), $"rule:{reader.GetString(1)[Rules.RuleAgent.Prefix.Length..]}", receiver,
                    (MessageKind)reader.GetInt16(4), reader.GetString(5), null, new LamportStamp(reader.GetInt64(6), reader.GetInt32(7)), reader.GetInt16(9)), reader.GetInt64(8)));
            }
        }

        foreach (var (message, _) in pending)
        {
            string? failure = null;
            try
            {
                await GrainFactory.SendMessage(message);
            }
            catch (Pr2Exception e) when (!e.IsRetriable)
            {
                failure = $"{e.Code}: {e.Message}";
            }

            await using var settle = source.CreateCommand(failure is null
                ? "update pr2_outbox set delivered_at = now() where message_id = $1"
                : "update pr2_outbox set failure = $2 where message_id = $1");
            settle.Parameters.Add(new NpgsqlParameter { Value = message.MessageId });
            if (failure is not null)
            {
                settle.Parameters.Add(new NpgsqlParameter { Value = failure });
            }

            await settle.ExecuteNonQueryAsync();
        }

        return pending.Count;
    }
}
