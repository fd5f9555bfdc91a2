using System.Text.Json;
using Polly;

namespace PR2.Client;

/// <summary>
/// A session (see <see cref="IPr2Session"/>): made by <see cref="Pr2Client.OpenSession"/>, one per unit of work. Safe
/// to use from several tasks at once; its read token only grows.
/// </summary>
public sealed class Pr2Session : IPr2Session
{
    private readonly IClusterClient _cluster;
    private readonly ResiliencePipeline _retry;
    private readonly JsonSerializerOptions _json;
    private ReadToken _token = ReadToken.Empty;

    internal Pr2Session(IClusterClient cluster, ResiliencePipeline retry, JsonSerializerOptions json)
    {
        _cluster = cluster;
        _retry = retry;
        _json = json;
    }

    /// <summary>A new session (an empty read token) with this one's cluster, retries and JSON options.</summary>
    internal Pr2Session Sibling() => new(_cluster, _retry, _json);

    public ReadToken SessionToken => Volatile.Read(ref _token);

    public void Observe(ReadToken token)
    {
        var current = Volatile.Read(ref _token);
        while (true)
        {
            var seen = Interlocked.CompareExchange(ref _token, current.Merge(token), current);
            if (ReferenceEquals(seen, current))
            {
                return;
            }

            current = seen;
        }
    }

    public Task<WriteAck> SendAsync(Message message, CancellationToken cancellationToken = default) => SendAsync(message, ownId: false, cancellationToken);

    public async Task<BatchAck> SendBatchAsync(int shard, IReadOnlyList<Message> messages, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        for (var i = 0; i < messages.Count; i++)
        {
            if (messages[i]?.Receiver is { IsReserved: true } reserved)
            {
                throw new Pr2Exception([new MessageRefusal(i, messages[i].MessageId, ErrorCode.ReservedActor, ReservedRefusal(reserved))], messages.Count);
            }
        }

        var batch = messages.ToArray();
        var ack = await WithRetriesAsync(_ => _cluster.GetGrain<IBatchGrain>(shard).Send(batch), cancellationToken);
        Observe(ack.Token);
        return ack;
    }

    public Task<WriteAck> SendAsync(int shard, string actorId, MessageKind kind, string? body, Guid? messageId = null, long? expectedVersion = null,
        string sender = "client", CancellationToken cancellationToken = default)
    {
        var message = new Message(messageId ?? MessageIds.New(), sender, ActorRef.Create(shard, actorId), kind, body ?? "", expectedVersion);
        return SendAsync(message, ownId: messageId is null, cancellationToken);
    }

    public Task<WriteAck> SendAsync<T>(int shard, string actorId, MessageKind kind, T body, Guid? messageId = null, long? expectedVersion = null,
        string sender = "client", CancellationToken cancellationToken = default) =>
        SendAsync(shard, actorId, kind, JsonSerializer.Serialize(body, _json), messageId, expectedVersion, sender, cancellationToken);

    public Task<WriteAck> InsertAsync<T>(int shard, string actorId, T body, Guid? messageId = null, CancellationToken cancellationToken = default) =>
        SendAsync(shard, actorId, MessageKind.Insert, body, messageId, cancellationToken: cancellationToken);

    public Task<WriteAck> ModifyAsync<T>(int shard, string actorId, T patch, long? expectedVersion = null, Guid? messageId = null,
        CancellationToken cancellationToken = default) =>
        SendAsync(shard, actorId, MessageKind.Modify, patch, messageId, expectedVersion, cancellationToken: cancellationToken);

    public Task<WriteAck> CancelAsync(int shard, string actorId, long? expectedVersion = null, Guid? messageId = null, CancellationToken cancellationToken = default) =>
        SendAsync(shard, actorId, MessageKind.Cancel, null, messageId, expectedVersion, cancellationToken: cancellationToken);

    public async Task<RecordRead> ReadRecordAsync(int shard, string actorId, ReadConsistency consistency = ReadConsistency.Session,
        CancellationToken cancellationToken = default)
    {
        var read = await WithRetriesAsync(_ => _cluster.GetGrain<IReadGrain>(shard).GetRecord(actorId, consistency, SessionToken), cancellationToken);
        Observe(read.Token);
        return read;
    }

    public async Task<Pr2Record<T>> ReadRecordAsync<T>(int shard, string actorId, ReadConsistency consistency = ReadConsistency.Session,
        CancellationToken cancellationToken = default)
    {
        var read = await ReadRecordAsync(shard, actorId, consistency, cancellationToken);
        var record = read.Record;
        var state = record.State is null ? default : JsonSerializer.Deserialize<T>(record.State, _json);
        return new Pr2Record<T>(record.Actor, record.Status, record.Version, state, record.LastStamp, read.Replica);
    }

    public Task<RecordRead> ReadRecordAsOfAsync(int shard, string actorId, LamportStamp asOf, CancellationToken cancellationToken = default) =>
        WithRetriesAsync(_ => _cluster.GetGrain<IReadGrain>(shard).GetRecordAsOf(actorId, asOf), cancellationToken);

    public async Task<RecordPage> QueryRecordsAsync(int shard, string type, string? containsJson = null, string? cursor = null, int limit = 100,
        ReadConsistency consistency = ReadConsistency.Session, CancellationToken cancellationToken = default)
    {
        var page = await WithRetriesAsync(_ => _cluster.GetGrain<IReadGrain>(shard).Query(type, containsJson, cursor, limit, consistency, SessionToken), cancellationToken);
        Observe(page.Token);
        return page;
    }

    // ownId: the MessageId was made here, so nobody sent it before this call: a Duplicate answering a retry can only be
    // this call's own earlier attempt, whose answer was lost, and the caller is told what is true for it (not a duplicate).
    private async Task<WriteAck> SendAsync(Message message, bool ownId, CancellationToken cancellationToken)
    {
        if (message.Receiver is { IsReserved: true } reserved)
        {
            throw new Pr2Exception(ErrorCode.ReservedActor, ReservedRefusal(reserved));
        }

        var attempts = 0;
        var ack = await WithRetriesAsync(_ =>
        {
            attempts++;
            return _cluster.SendMessage(message);
        }, cancellationToken);
        Observe(ack.Token);
        return ownId && attempts > 1 && ack.Duplicate ? ack with { Duplicate = false } : ack;
    }

    private static string ReservedRefusal(ActorRef reserved) =>
        $"{reserved} is kept by PR2 itself ({string.Join(", ", ActorRef.ReservedTypes.Select(t => t + "/*"))} in shard 0): change rules through the rules API and shards through the topology, not by messages";

    private async Task<T> WithRetriesAsync<T>(Func<CancellationToken, Task<T>> call, CancellationToken cancellationToken) =>
        await _retry.ExecuteAsync(async token => await UnavailableCluster.Answer(() => call(token), token), cancellationToken);
}
