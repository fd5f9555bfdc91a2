namespace PR2;

/// <summary>
/// The journal writer of one shard (key = shard code). Assigns contiguous positions and Lamport stamps
/// and group-commits concurrent appends into one transaction. Reentrant: appends arriving while a
/// transaction is in flight join the next one. Acknowledges only after commit.
/// </summary>
public interface IShardWriterGrain : IGrainWithIntegerKey
{
    /// <summary>Appends one entry; returns its acknowledgement after the commit, or the first acknowledgement for a known MessageId.</summary>
    Task<WriteAck> Append(AppendRequest request);

    /// <summary>
    /// <see cref="Append"/> once more, for the same call: an earlier attempt of it may have committed (it stalled, or
    /// its outcome is unknown). The entry found written is then this call's own, not an earlier call's: the ack does
    /// not say <see cref="WriteAck.Duplicate"/>, and a refusal that the earlier attempt might still undo comes back as
    /// <see cref="ErrorCode.ShardUnavailable"/> (outcome unknown) instead.
    /// </summary>
    Task<WriteAck> AppendAgain(AppendRequest request);

    /// <summary>
    /// Appends an atomic batch (see <see cref="IBatchGrain.Send"/>): the writer judges each message against its actor's
    /// record, in batch order, and gives it the next version (<see cref="AppendRequest.Version"/> is not used).
    /// <paramref name="attemptedBefore"/> as for <see cref="AppendAgain"/>: an earlier attempt of this call may have committed.
    /// </summary>
    Task<BatchAck> AppendBatch(AppendRequest[] requests, bool attemptedBefore);

    /// <summary>
    /// Before an actor refuses a message: the first acknowledgement of <paramref name="messageId"/> if the shard
    /// accepted it earlier (once the shard's ack policy holds for it), <see cref="ErrorCode.IdempotencyConflict"/> if
    /// it was accepted with other content, or null when it was not and never will be and <paramref name="actor"/>'s
    /// journal on the primary is still at <paramref name="judgedVersion"/> (the version the refusal was judged against).
    /// Entries the actor lacked may arrive while this settles what earlier writers left on other replicas: then
    /// <see cref="ErrorCode.StaleActor"/>, and the actor reads its journal and judges again. While an earlier append of it
    /// may still commit somewhere (in flight on a replica that stopped answering), <see cref="ErrorCode.ShardUnavailable"/>:
    /// the outcome is unknown, and a retry with the same MessageId gets the true one.
    /// </summary>
    Task<WriteAck?> FindAccepted(Guid messageId, byte[] contentHash, ActorRef actor, long judgedVersion);

    /// <summary>The shard's committed head: last position and Lamport clock.</summary>
    Task<ShardHead> GetHead();

    /// <summary>Index of the replica the writer appends to (the primary), choosing one first if needed.</summary>
    Task<int> GetPrimary();

    /// <summary>
    /// The primary, for a strong read: only when it holds every entry the shard may have acknowledged (per origin, what
    /// every replica read since this writer took over holds, and what its earlier writers acknowledged), and the replicas
    /// not heard from since are too few to hold an acknowledged entry alone (fewer than the ack policy's copies).
    /// Otherwise <see cref="ErrorCode.ShardUnavailable"/> (retriable), saying what is missing.
    /// </summary>
    Task<int> GetStrongPrimary();

    /// <summary>
    /// After a replica was restored from a backup (<c>pr2 restore</c>): acknowledged entries that no replica holds any more
    /// were lost with the servers (the Primary ack policy, or every replica lost), and strong reads stop waiting for them.
    /// Done only when every replica answers (one that does not may still hold them). Returns how many acknowledged entries
    /// no replica holds (0: none lost), or -1 when a replica did not answer and nothing was changed.
    /// </summary>
    Task<long> ForgetLost();

    /// <summary>
    /// Gives up the writer open on replica <paramref name="replica"/>, if any (its database is lost and about to be restored,
    /// see <c>pr2 restore</c>): what it kept in memory of that journal is forgotten, and the next append takes over anew.
    /// </summary>
    Task Release(int replica);

    /// <summary>
    /// A reader could not reach replica <paramref name="primary"/> as the primary: if it is still the primary
    /// and does not answer a short probe either, the writer fails over. Returns the primary's index afterwards.
    /// </summary>
    Task<int> ReportUnreachable(int primary);

    /// <summary>
    /// Moves the primary to replica <paramref name="replica"/> (a planned switch-over, e.g. before maintenance of the
    /// primary's server): the replica copies what it lacks while writes go on; then the writer commits what it has queued,
    /// a new writer fences the replicas, gathers their entries into the chosen one (the old primary's included, or it
    /// does not open there) and opens there. Appends arriving meanwhile wait for it (within their budget) rather than
    /// fail; nothing acknowledged is lost. The move is journaled in the directory, and a writer activated later prefers
    /// the replica chosen last among those holding the most. Returns the primary's index (the same when it is there
    /// already). A replica that cannot take over (it does not answer, is too far behind, could not gather the old
    /// primary): <see cref="ErrorCode.ShardUnavailable"/>, saying why and where the primary is; no such replica:
    /// <see cref="ErrorCode.BadMessage"/>.
    /// </summary>
    Task<int> MovePrimary(int replica);

    /// <summary>
    /// Makes a joining replica (added at runtime, see <see cref="IDirectoryGrain.AddReplica"/>) a member: it catches up while
    /// writes go on, then, with writes waiting as for a planned move, takes the primary's last entries, is recorded a member
    /// in the directory, and the writer reopens counting it toward the ack policy. True when it is a member (also when it
    /// was already); still too far behind, or the writer failing over: <see cref="ErrorCode.ShardUnavailable"/> (retriable).
    /// Anti-entropy calls it once the replica lacks little; callers need not.
    /// </summary>
    Task<bool> AdmitReplica(int replica);

    /// <summary>
    /// Removes a replica from the shard (not shard 0's; never the primary: move it first; never the last member): with
    /// writes waiting as for a planned move, everything the primary holds is copied to as many of the other members as the
    /// ack policy needs without it, the directory records it removed, and the writer reopens without it. It keeps its index;
    /// nothing reads, fills or counts it again, and its database may then be dropped. True when it is removed (also when it
    /// was already); the members left not able to hold the policy: <see cref="ErrorCode.ShardUnavailable"/> (retriable),
    /// nothing changed.
    /// </summary>
    Task<bool> RemoveReplica(int replica);

    /// <summary>
    /// Seals the shard for its removal (its directory record must say the removal began): the writer commits what it has
    /// queued and stops, every live replica is retired (no writer commits or opens there again), the replicas are made
    /// equal, and each is marked sealed, after which any of them answers for the journal (acknowledgements by MessageId,
    /// strong reads). Returns each live replica's journal head. A replica not answering: <see cref="ErrorCode.ShardUnavailable"/>
    /// naming it (the seal waits for it; run again). Idempotent.
    /// </summary>
    Task<IReadOnlyDictionary<int, long>> Seal();
}
