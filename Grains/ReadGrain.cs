using System.Buffers.Text;
using System.Data;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Npgsql;
using Orleans.Concurrency;
using PR2.Grains.Agents;
using PR2.Grains.Records;
using PR2.Grains.Replication;
using PR2.Grains.Storage;

namespace PR2.Grains;

/// <summary>
/// Snapshot-consistent reads of one shard. Every answer comes from one REPEATABLE READ transaction on one
/// replica: a strong read on the primary folds the journal (or queries the records view after its agent caught
/// up), so it sees everything committed before it began; an eventual read takes the first replica that answers,
/// the others before the primary; a session read takes the first replica whose records view covers the
/// caller's read token, waiting for a lagging one up to a bound before moving on. Every answer reports the
/// replica, the position its records view reflected, and the read token of what it reflected.
/// </summary>
[StatelessWorker]
[Reentrant]
public sealed class ReadGrain(ShardRegistry shards, TopologyFollower topology) : Grain, IReadGrain, IIncomingGrainCallFilter
{
    // Every call: a shard added a moment ago on another silo may not have reached this one (the directory says), and a
    // stateless worker lives on after answering "unknown".
    public async Task Invoke(IIncomingGrainCallContext context)
    {
        await topology.KnowsAsync(this.GetPrimaryKeyLong());
        await context.Invoke();
    }

    public const int MaxPage = 1000;

    /// <summary>How long a session read waits in all for a replica that covers its token.</summary>
    public static readonly TimeSpan SessionWait = TimeSpan.FromSeconds(3);

    /// <summary>How long it waits for one replica other than the primary before trying the next.</summary>
    public static readonly TimeSpan SessionWaitPerReplica = TimeSpan.FromSeconds(1);

    /// <summary>How long a strong read waits for the primary to hold every acknowledged entry before it is refused.</summary>
    public static readonly TimeSpan StrongWait = TimeSpan.FromSeconds(3);

    private static readonly TimeSpan AttemptTimeout = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan SessionPoll = TimeSpan.FromMilliseconds(20);

    private int ShardCode => (int)this.GetPrimaryKeyLong();

    public async Task<RecordRead> GetRecord(string actorId, ReadConsistency consistency, ReadToken? token = null)
    {
        var actor = Actor(actorId);
        async Task<RecordRead> ReadViewAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, int replica)
        {
            var mark = await AgentMarks.ReadAsync(connection, RecordsProjector.AgentName, ShardCode);
            var stored = await RecordStore.ReadAsync(connection, [actor.ActorId]);
            var reflected = await ReadCoverage.ReflectedAsync(connection, ShardCode, mark);
            return new RecordRead((stored.GetValueOrDefault(actor.ActorId) ?? RecordState.Missing).ToRecord(actor), replica, mark, reflected);
        }

        switch (consistency)
        {
            case ReadConsistency.Strong:
                return await OnReplicaAsync(await StrongPrimaryAsync(), async (connection, transaction, replica) =>
                {
                    var head = await HeadAsync(connection, transaction);
                    var entries = await JournalStore.ReadActorAsync(connection, actor, head);
                    var everything = ReadToken.Of(ShardCode, (await VersionVector.ReadAsync(connection)).Positions);
                    return new RecordRead(RecordState.Fold(entries).ToRecord(actor), replica, head, everything);
                });
            case ReadConsistency.Session:
                return await OnCoveringReplicaAsync(token, ReadViewAsync);
            default:
                return await OnAnyReplicaAsync(ReadViewAsync);
        }
    }

    public async Task<RecordRead> GetRecordAsOf(string actorId, LamportStamp asOf)
    {
        var actor = Actor(actorId);
        return await OnReplicaAsync(await PrimaryAsync(), async (connection, transaction, replica) =>
        {
            var head = await HeadAsync(connection, transaction);
            var entries = await JournalStore.ReadActorAsync(connection, actor, head);
            // A view of the past claims nothing about the present: no token.
            return new RecordRead(RecordState.Fold(entries.Where(e => e.Stamp <= asOf)).ToRecord(actor), replica, head, ReadToken.Empty);
        });
    }

    public async Task<RecordPage> Query(string type, string? containsJson, string? cursor, int limit, ReadConsistency consistency, ReadToken? token = null)
    {
        if (limit is < 1 or > MaxPage)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, $"limit must be between 1 and {MaxPage}, got {limit}");
        }

        var contains = CheckFilter(containsJson);
        var after = DecodeCursor(cursor);
        int? only = null;
        if (consistency == ReadConsistency.Strong)
        {
            // The primary's records view first takes in everything committed so far.
            var primary = await StrongPrimaryAsync();
            await GrainFactory.GetGrain<IAgentGrain>(AgentCatalog.Key(RecordsProjector.AgentName, ShardCode, primary)).CatchUp();
            only = primary;
        }

        async Task<RecordPage> ReadPageAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, int replica)
        {
            var mark = await AgentMarks.ReadAsync(connection, RecordsProjector.AgentName, ShardCode);
            var rows = await RecordStore.QueryAsync(connection, transaction, type, contains, after, limit + 1);
            var page = rows.Take(limit).Select(r => r.State.ToRecord(new ActorRef(ShardCode, r.ActorId))).ToList();
            var next = rows.Count > limit ? EncodeCursor(page[^1].Actor.ActorId) : null;
            return new RecordPage(page, next, replica, mark, await ReadCoverage.ReflectedAsync(connection, ShardCode, mark));
        }

        return only is { } index ? await OnReplicaAsync(index, ReadPageAsync)
            : consistency == ReadConsistency.Session ? await OnCoveringReplicaAsync(token, ReadPageAsync)
            : await OnAnyReplicaAsync(ReadPageAsync);
    }

    private ActorRef Actor(string actorId)
    {
        shards.Get(ShardCode); // UnknownShard when it is not configured
        return ActorRef.TryValidate(ShardCode, actorId, out var problem) ? new ActorRef(ShardCode, actorId) : throw new Pr2Exception(ErrorCode.BadActorId, problem);
    }

    private static string? CheckFilter(string? containsJson)
    {
        if (containsJson is null)
        {
            return null;
        }

        try
        {
            return JsonNode.Parse(containsJson) is JsonObject filter
                ? filter.ToJsonString()
                : throw new Pr2Exception(ErrorCode.BadBody, "the filter must be a JSON object, e.g. {\"customer\": \"c-7\"}");
        }
        catch (JsonException e)
        {
            throw new Pr2Exception(ErrorCode.BadBody, $"the filter is not valid JSON: {e.Message}");
        }
    }

    // The cursor is opaque to callers: the last actor id of the page, base64url.
    private static string EncodeCursor(string actorId) => Base64Url.EncodeToString(Encoding.UTF8.GetBytes(actorId));

    private static string DecodeCursor(string? cursor)
    {
        if (string.IsNullOrEmpty(cursor))
        {
            return "";
        }

        try
        {
            return Encoding.UTF8.GetString(Base64Url.DecodeFromChars(cursor));
        }
        catch (FormatException)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, "the cursor is not one this service gave out");
        }
    }

    private static async Task<long> HeadAsync(NpgsqlConnection connection, NpgsqlTransaction transaction)
    {
        await using var command = new NpgsqlCommand("select position from pr2_writer_head", connection, transaction);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    // Replicas other than the primary first (in random order), then the primary: the first that answers.
    private async Task<T> OnAnyReplicaAsync<T>(Func<NpgsqlConnection, NpgsqlTransaction, int, Task<T>> read)
    {
        Pr2Exception? last = null;
        foreach (var replica in ReplicaOrder())
        {
            try
            {
                return await OnReplicaAsync(replica, read);
            }
            catch (Pr2Exception e) when (e.Code == ErrorCode.ShardUnavailable)
            {
                last = e;
            }
        }

        throw last!;
    }

    // In the same order, the first replica whose records view covers the token, each checked in the snapshot the
    // read then uses. A replica behind is polled for up to SessionWaitPerReplica (the primary, last, for the rest
    // of SessionWait): anti-entropy or its records agent usually closes the gap in milliseconds.
    private async Task<T> OnCoveringReplicaAsync<T>(ReadToken? token, Func<NpgsqlConnection, NpgsqlTransaction, int, Task<T>> read)
    {
        var required = token?.ForShard(ShardCode) ?? new Dictionary<Guid, long>();
        if (required.Count == 0)
        {
            return await OnAnyReplicaAsync(read);
        }

        var started = DateTime.UtcNow;
        var order = ReplicaOrder();
        var shortfalls = new List<string>();
        foreach (var replica in order)
        {
            var giveUp = replica == order[^1] ? started + SessionWait : Min(started + SessionWait, DateTime.UtcNow + SessionWaitPerReplica);
            while (true)
            {
                (bool Covered, T? Value, string? Missing) attempt;
                try
                {
                    attempt = await OnReplicaAsync(replica, async (connection, transaction, index) =>
                    {
                        var mark = await AgentMarks.ReadAsync(connection, RecordsProjector.AgentName, ShardCode);
                        var missing = await ReadCoverage.MissingAsync(connection, required, mark);
                        return missing is null ? (true, await read(connection, transaction, index), null) : (false, default(T), missing);
                    });
                }
                catch (Pr2Exception e) when (e.Code == ErrorCode.ShardUnavailable)
                {
                    shortfalls.Add($"replica {replica} did not answer");
                    break;
                }

                if (attempt.Covered)
                {
                    return attempt.Value!;
                }

                if (DateTime.UtcNow + SessionPoll >= giveUp)
                {
                    shortfalls.Add($"replica {replica} {attempt.Missing}");
                    break;
                }

                await Task.Delay(SessionPoll);
            }
        }

        throw new Pr2Exception(ErrorCode.SessionNotCovered,
            $"no replica of shard {ShardCode} caught up with this session's read token within {SessionWait.TotalSeconds:0.#} s ({string.Join("; ", shortfalls)}); retry, or read with another consistency");
    }

    private Task<int> PrimaryAsync() => CurrentPrimary.AskAsync(GrainFactory, shards.Get(ShardCode), AttemptTimeout);

    // The primary once it holds every entry the shard may have acknowledged (the writer grain decides, and wakes
    // anti-entropy when it does not yet); asked again for up to StrongWait, then the writer's refusal stands.
    private async Task<int> StrongPrimaryAsync()
    {
        var set = shards.Get(ShardCode);
        var deadline = DateTime.UtcNow + StrongWait;
        while (true)
        {
            try
            {
                var primary = await GrainFactory.GetGrain<IShardWriterGrain>(ShardCode).GetStrongPrimary().WaitAsync(AttemptTimeout * 2);
                set.Promote(primary);
                return primary;
            }
            catch (Pr2Exception e) when (e.Code == ErrorCode.ShardUnavailable && DateTime.UtcNow + SessionPoll < deadline)
            {
                await Task.Delay(SessionPoll * 5);
            }
            catch (TimeoutException)
            {
                throw new Pr2Exception(ErrorCode.ShardUnavailable, $"shard {ShardCode} has no primary answering within {(AttemptTimeout * 2).TotalSeconds:0.#} s; retry");
            }
        }
    }

    private static DateTime Min(DateTime a, DateTime b) => a < b ? a : b;

    private List<int> ReplicaOrder()
    {
        var set = shards.Get(ShardCode);
        // Members only: a replica still joining may lack almost everything.
        return set.Members.Where(i => i != set.PrimaryIndex).OrderBy(_ => Random.Shared.Next()).Append(set.PrimaryIndex).ToList();
    }

    private async Task<T> OnReplicaAsync<T>(int replica, Func<NpgsqlConnection, NpgsqlTransaction, int, Task<T>> read)
    {
        async Task<T> AttemptAsync(CancellationToken cancellationToken)
        {
            await using var connection = await shards.Get(ShardCode).Readers[replica].OpenConnectionAsync(cancellationToken);
            await using var transaction = await connection.BeginTransactionAsync(IsolationLevel.RepeatableRead, cancellationToken);
            // First, before the snapshot: a rebuild's swap of the records view is then wholly seen or not at all.
            await RecordStore.LockLiveAsync(connection, transaction, cancellationToken);
            var result = await read(connection, transaction, replica);
            await transaction.CommitAsync(cancellationToken);
            return result;
        }

        try
        {
            // A paused server answers nothing, not even Npgsql's cancellation: stop waiting at the deadline.
            using var timeout = new CancellationTokenSource(AttemptTimeout);
            return await AttemptAsync(timeout.Token).WaitAsync(timeout.Token);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
        {
            throw new Pr2Exception(ErrorCode.ShardUnavailable, $"shard {ShardCode} replica {replica} did not answer ({DatabaseFailure.Describe(e)}); retry");
        }
    }
}
