using Microsoft.Extensions.Logging;
using Npgsql;
using Orleans.Streams;
using PR2.Grains.Records;
using PR2.Grains.Storage;

namespace PR2.Grains.Streaming;

/// <summary>
/// Reads one shard's journal for the stream provider: on the current primary, in its journal order, every entry the
/// delivered vector does not include yet. It starts from the provider's checkpoint in that database; when the primary
/// changes it starts on the new one just before the first entry it has not read (<see cref="StreamCheckpoints.StartPositionAsync"/>),
/// so a change of primary skips nothing. A message held under two origins (committed twice across a fail-over, kept
/// once per replica) is delivered once while its id is among the last <see cref="RecentIds"/> read. Each entry goes out
/// with the record it left (folded in the same snapshot as the page; <see cref="FoldedRecords"/> keeps the last record of
/// recent actors, so a hot actor costs one fold per entry and a page of new actors one history read).
/// </summary>
public sealed class JournalQueueReceiver(
    string provider, int shard, ShardRegistry shards, IGrainFactory grains, ILogger logger, Action<IReadOnlyDictionary<Guid, long>> startsFrom)
    : IQueueAdapterReceiver
{
    private const int RecentIds = 100_000;
    private static readonly TimeSpan PrimaryTimeout = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan CheckpointEvery = TimeSpan.FromSeconds(1);

    private readonly HashSet<Guid> _recentIds = [];
    private FoldedRecords _folded = new();
    private Guid _replicaId;
    private readonly Queue<Guid> _recentOrder = new();
    private Dictionary<Guid, long>? _read;
    private int _replica = -1;
    private long _afterPosition;
    private Dictionary<Guid, long>? _checkpoint;
    private DateTime _checkpointedAt;

    public Task Initialize(TimeSpan timeout) => Task.CompletedTask;

    public async Task<IList<IBatchContainer>> GetQueueMessagesAsync(int maxCount)
    {
        if (shards.IsRemoved(shard))
        {
            return []; // a removed shard's journal ends: its stream carries nothing more
        }

        var set = shards.Get(shard);
        var primary = await CurrentPrimary.AskAsync(grains, set, PrimaryTimeout);
        var source = set.Readers[primary];
        try
        {
            if (_read is null)
            {
                _read = await StreamCheckpoints.ReadAsync(source, provider);
                startsFrom(_read);
            }

            if (primary != _replica)
            {
                _afterPosition = await StreamCheckpoints.StartPositionAsync(source, _read);
                _replicaId = await ReplicaIdAsync(source);
                _folded = new FoldedRecords(); // from here on every entry of this replica passes through it, in order
                _replica = primary;
                Log.StreamReaderStarted(logger, provider, shard, primary, _afterPosition);
            }

            // Read (and the connection given back) before anything is counted as read below.
            var states = await ReadPageAsync(source, maxCount is > 0 and < 1000 ? maxCount : 1000);
            if (states.Count > 0)
            {
                Log.StreamPageRead(logger, provider, shard, states.Count, _afterPosition, primary);
            }

            var batches = new List<IBatchContainer>(states.Count * 2);
            foreach (var (entry, state) in states)
            {
                _afterPosition = entry.Position;
                if (_read.GetValueOrDefault(entry.OriginReplica) >= entry.OriginPosition)
                {
                    continue; // delivered from another replica before the change of primary
                }

                _read[entry.OriginReplica] = entry.OriginPosition;
                if (!Remember(entry.MessageId))
                {
                    continue; // the same message under a second origin
                }

                var token = new JournalStreamToken(entry.OriginReplica, entry.OriginPosition, _read);
                var record = state.ToRecord(entry.Actor);
                var place = new WatchPosition(_replicaId, entry.Position, _read);
                batches.Add(new JournalBatchContainer(Pr2Streams.Journal(shard), entry, token, record, place));
                batches.Add(new JournalBatchContainer(Pr2Streams.OfType(shard, entry.Actor.Type), entry, token, record, place));
            }

            await CheckpointIfDueAsync(source);
            return batches; // nothing after the loop may fail: the loop already counted these entries as read
        }
        catch (NpgsqlException e)
        {
            _replica = -1; // start again on whichever replica is primary next time
            throw new Pr2Exception(ErrorCode.ShardUnavailable, $"shard {shard} journal stream: the primary did not answer ({DatabaseFailure.Describe(e)})");
        }
    }

    // One snapshot for the entries and the records they left.
    private async Task<IReadOnlyList<(JournalEntry Entry, RecordState State)>> ReadPageAsync(NpgsqlDataSource source, int limit)
    {
        await using var connection = await source.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead);
        await _folded.CheckRestampsAsync(source, connection);
        var read = await JournalStore.ReadAsync(connection, shard, _afterPosition, limit);
        // Only what is committed without a gap below it: the rest is read again from the gap next time.
        var entries = read.TakeWhile((entry, i) => entry.Position == _afterPosition + 1 + i).ToList();
        var states = await _folded.StatesAsync(source, connection, _afterPosition, entries, limit, everyEntryFolded: true);
        await transaction.CommitAsync();
        return states;
    }

    /// <summary>Entries every subscriber was given and the cache let go: the checkpoint may move past them.</summary>
    public Task MessagesDeliveredAsync(IList<IBatchContainer> messages)
    {
        var last = messages.OfType<JournalBatchContainer>().MaxBy(m => m.Token.SequenceNumber);
        if (last is not null)
        {
            _checkpoint = new Dictionary<Guid, long>(last.Token.Delivered);
        }

        return Task.CompletedTask;
    }

    public async Task Shutdown(TimeSpan timeout)
    {
        if (_replica >= 0 && _checkpoint is not null)
        {
            try
            {
                await StreamCheckpoints.WriteAsync(shards.Get(shard).Readers[_replica], provider, _checkpoint).WaitAsync(timeout);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                // The next reader starts from the previous checkpoint and delivers a little more again.
            }
        }
    }

    // A failed write is tried again later and never fails the read: the page just read must reach the cache, since
    // the receiver has already moved past it.
    private async Task CheckpointIfDueAsync(NpgsqlDataSource source)
    {
        if (_checkpoint is null || DateTime.UtcNow - _checkpointedAt < CheckpointEvery)
        {
            return;
        }

        try
        {
            await StreamCheckpoints.WriteAsync(source, provider, _checkpoint);
            _checkpoint = null;
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
        {
            Log.StreamCheckpointFailed(logger, provider, shard, e.Message);
        }

        _checkpointedAt = DateTime.UtcNow;
    }

    private static async Task<Guid> ReplicaIdAsync(NpgsqlDataSource source)
    {
        await using var command = source.CreateCommand("select replica_id from pr2_replica");
        return (Guid)(await command.ExecuteScalarAsync())!;
    }

    private bool Remember(Guid messageId)
    {
        if (!_recentIds.Add(messageId))
        {
            return false;
        }

        _recentOrder.Enqueue(messageId);
        if (_recentOrder.Count > RecentIds)
        {
            _recentIds.Remove(_recentOrder.Dequeue());
        }

        return true;
    }
}
