using System.Collections.Concurrent;
using Npgsql;
using PR2.Client;

namespace PR2.Tests.Infrastructure;

/// <summary>
/// What a workload's clients were told (acknowledgements, refusals, strong reads) and the checks that hold it against
/// the truth: a refused MessageId is in no journal, <c>Duplicate</c> is only ever the answer to a call that was itself a
/// retry, one actor's acknowledgements come in increasing versions, and a strong read is never older than the last
/// acknowledgement its actor got before the read began.
/// </summary>
public sealed class ClientHistory
{
    private readonly ConcurrentDictionary<Guid, string> _refused = new();
    private readonly ConcurrentDictionary<ActorRef, long> _lastAcked = new();

    public int Refused => _refused.Count;

    public int StrongReads { get; private set; }

    public ConcurrentBag<string> FalseDuplicates { get; } = [];

    /// <summary>An actor's acknowledgement at a version not above one it acknowledged before (the actor, and what happened).</summary>
    public ConcurrentBag<(ActorRef Actor, string Problem)> OrderReversals { get; } = [];

    public ConcurrentBag<string> StaleStrongReads { get; } = [];

    /// <summary>The answer to a call; <paramref name="call"/> counts the calls with this MessageId, from 1.</summary>
    public void Acknowledged(Message message, WriteAck ack, int call)
    {
        if (ack.Duplicate && call == 1)
        {
            FalseDuplicates.Add($"{message.MessageId} ({message.Kind}) to {message.Receiver}: the first call was answered as a duplicate " +
                $"(version {ack.Version}, position {ack.Position}, origin {ack.Origin} at {ack.OriginPosition})");
        }

        // One client per actor, one message at a time: each acknowledgement is a newer version than the one before.
        _lastAcked.AddOrUpdate(message.Receiver, ack.Version, (actor, last) =>
        {
            if (ack.Version <= last)
            {
                OrderReversals.Add((actor, $"{actor}: acknowledged version {ack.Version} after version {last} ({message.MessageId})"));
            }

            return Math.Max(last, ack.Version);
        });
    }

    /// <summary>A final refusal (<paramref name="what"/>: the receiver, call number and the refusal, for the report).</summary>
    public void Refusal(Guid messageId, string what) => _refused[messageId] = what;

    /// <summary>Strong reads of <paramref name="actors"/>, each checked against the last acknowledgement before it; retriable refusals are allowed.</summary>
    public async Task ReadStronglyAsync(Pr2Client client, IEnumerable<ActorRef> actors)
    {
        foreach (var actor in actors)
        {
            var before = _lastAcked.GetValueOrDefault(actor);
            try
            {
                var read = await client.ReadRecordAsync(actor.Shard, actor.ActorId, ReadConsistency.Strong);
                StrongReads++;
                if (read.Record.Version < before)
                {
                    StaleStrongReads.Add($"{actor}: strong read at version {read.Record.Version} (replica {read.Replica}) after version {before} was acknowledged");
                }
            }
            catch (Exception e) when (e is Pr2Exception { IsRetriable: true } or TimeoutException or Orleans.Runtime.SiloUnavailableException or Orleans.Runtime.OrleansMessageRejectionException)
            {
                // Said it could not answer: allowed, and nothing to check.
            }
        }
    }

    /// <summary>The refused MessageIds the replica's journal holds (each one a refusal that was not final), described.</summary>
    public async Task<List<string>> CommittedRefusalsAsync(NpgsqlDataSource replica)
    {
        await using var command = replica.CreateCommand(
            "select message_id, actor_id, actor_version, origin_position, position from pr2_journal where message_id = any($1)");
        command.Parameters.Add(new NpgsqlParameter { Value = _refused.Keys.ToArray() });
        var found = new List<string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            found.Add($"{reader.GetGuid(0)} refused ({_refused[reader.GetGuid(0)]}) but held as {reader.GetString(1)} v{reader.GetInt64(2)} " +
                $"at #{reader.GetInt64(4)} (origin #{reader.GetInt64(3)}) in {replica.ConnectionString}");
        }

        return found;
    }
}
