using Microsoft.Extensions.Logging;

namespace PR2.Grains;

/// <summary>Every log message of the grains, with its event id, in one place.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Applied schema script {Script} to shard {Shard} replica {Replica}")]
    public static partial void SchemaScriptApplied(ILogger logger, string script, int shard, int replica);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Warning, Message = "Shard {Shard} replica {Replica} did not answer at start ({Problem}); its schema is checked again in the background")]
    public static partial void SchemaDeferred(ILogger logger, string problem, int shard, int replica);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Error, Message = "Shard {Shard} replica {Replica}: the schema could not be applied; fix the cause and restart the silo")]
    public static partial void SchemaFailed(ILogger logger, Exception exception, int shard, int replica);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Warning, Message = "The membership database did not answer ({Problem}, attempt {Attempt}); trying again until {Deadline:u}")]
    public static partial void MembershipUnreachable(ILogger logger, string problem, int attempt, DateTime deadline);

    [LoggerMessage(EventId = 2001, Level = LogLevel.Information, Message = "Journal writer for shard {Shard} took over at epoch {Epoch}: position {Position}, clock {Clock}")]
    public static partial void WriterOpened(ILogger logger, int shard, long epoch, long position, long clock);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Warning, Message = "Journal writer for shard {Shard} at epoch {Epoch} was fenced by epoch {CurrentEpoch}; it stops")]
    public static partial void WriterFenced(ILogger logger, int shard, long epoch, long currentEpoch);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Warning, Message = "Group commit of {Count} entries on shard {Shard} failed; nothing was acknowledged")]
    public static partial void GroupCommitFailed(ILogger logger, Exception exception, int shard, int count);

    [LoggerMessage(EventId = 2010, Level = LogLevel.Warning, Message = "Group commit of {Count} entries on shard {Shard} was refused for an entry's data; committing them one at a time")]
    public static partial void GroupCommitSplit(ILogger logger, Exception exception, int shard, int count);

    [LoggerMessage(EventId = 3001, Level = LogLevel.Debug, Message = "Actor {Actor} loaded at version {Version}")]
    public static partial void ActorLoaded(ILogger logger, ActorRef actor, long version);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Information, Message = "Actor {Actor} was behind the journal; reloading and retrying once")]
    public static partial void ActorStale(ILogger logger, ActorRef actor);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Information, Message = "An append to shard {Shard}'s writer in this silo got no answer in time; it goes to the writer grain")]
    public static partial void LocalAppendStalled(ILogger logger, int shard);

    [LoggerMessage(EventId = 4001, Level = LogLevel.Warning, Message = "Agent {Agent} on shard {Shard} failed; its mark did not move and it will retry")]
    public static partial void AgentFailed(ILogger logger, Exception exception, string agent, int shard);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Debug, Message = "Could not wake agent {Agent}")]
    public static partial void AgentWakeFailed(ILogger logger, Exception exception, string agent);

    [LoggerMessage(EventId = 5001, Level = LogLevel.Warning, Message = "Could not record the topology in the directory (shard 0)")]
    public static partial void DirectorySyncFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 6001, Level = LogLevel.Warning, Message = "Anti-entropy on shard {Shard} from replica {From} to replica {To} failed; it retries")]
    public static partial void AntiEntropyFailed(ILogger logger, Exception exception, int shard, int from, int to);

    [LoggerMessage(EventId = 2004, Level = LogLevel.Warning, Message = "Shard {Shard}: primary is now replica {Primary} (was {Previous})")]
    public static partial void PrimaryChosen(ILogger logger, int shard, int previous, int primary);

    [LoggerMessage(EventId = 2006, Level = LogLevel.Warning, Message = "Shard {Shard}: the new primary (replica {Primary}) could not take replica {Replica}'s entries before opening ({Problem})")]
    public static partial void GatherFailed(ILogger logger, int shard, int replica, int primary, string problem);

    [LoggerMessage(EventId = 2005, Level = LogLevel.Warning, Message = "Shard {Shard}: could not record primary {Primary} in the directory")]
    public static partial void PrimaryNotRecorded(ILogger logger, Exception exception, int shard, int primary);

    [LoggerMessage(EventId = 6002, Level = LogLevel.Warning, Message = "Shard {Shard}: could not record replica states in the directory; it retries")]
    public static partial void ReplicaStatesNotRecorded(ILogger logger, Exception exception, int shard);

    [LoggerMessage(EventId = 7001, Level = LogLevel.Error, Message = "Rule {Rule} is not run: its definition no longer holds ({Problem})")]
    public static partial void RuleNotLoaded(ILogger logger, string rule, string problem);

    [LoggerMessage(EventId = 7003, Level = LogLevel.Error, Message = "Rule record {Actor} cannot be read and is skipped ({Problem})")]
    public static partial void RuleRecordUnreadable(ILogger logger, string actor, string problem);

    [LoggerMessage(EventId = 7004, Level = LogLevel.Warning, Message = "Rule {Rule}: a replica did not answer; its marks or parked entries there are left as they are ({Problem})")]
    public static partial void RuleLeftoversKept(ILogger logger, string rule, string problem);

    [LoggerMessage(EventId = 7002, Level = LogLevel.Warning, Message = "Outbox of shard {Shard}: delivery paused, it retries")]
    public static partial void RelayFailed(ILogger logger, Exception exception, int shard);

    [LoggerMessage(EventId = 8001, Level = LogLevel.Information, Message = "Journal stream {Provider} of shard {Shard} reads replica {Replica} after position {Position}")]
    public static partial void StreamReaderStarted(ILogger logger, string provider, int shard, int replica, long position);

    [LoggerMessage(EventId = 8002, Level = LogLevel.Warning, Message = "Journal stream {Stream}: a subscriber asked to resume before what the cache still holds; it is told so (OnErrorAsync) and resumes at the oldest entry held")]
    public static partial void StreamCacheMiss(ILogger logger, StreamId stream);

    [LoggerMessage(EventId = 8003, Level = LogLevel.Warning, Message = "Journal stream {Provider} of shard {Shard}: the checkpoint could not be written ({Problem}); it is tried again")]
    public static partial void StreamCheckpointFailed(ILogger logger, string provider, int shard, string problem);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Information, Message = "Shard {Shard} joined from the directory ({Replicas} replica(s), {AckPolicy})")]
    public static partial void ShardJoined(ILogger logger, int shard, int replicas, string ackPolicy);

    [LoggerMessage(EventId = 1006, Level = LogLevel.Warning, Message = "Shard {Shard} is in the directory but this silo cannot join it: {Problem}")]
    public static partial void ShardNotJoined(ILogger logger, int shard, string problem);

    [LoggerMessage(EventId = 1007, Level = LogLevel.Information, Message = "Shard {Shard}: replica {Replica} added, joining (anti-entropy fills it; it serves once admitted)")]
    public static partial void ReplicaAdded(ILogger logger, int shard, int replica);

    [LoggerMessage(EventId = 1014, Level = LogLevel.Warning, Message = "Shard {Shard}: removal {State}")]
    public static partial void ShardRemovalAdvanced(ILogger logger, int shard, string state);

    [LoggerMessage(EventId = 1015, Level = LogLevel.Warning, Message = "Shard {Shard} sealed for its removal: {Heads}")]
    public static partial void ShardSealed(ILogger logger, int shard, string heads);

    [LoggerMessage(EventId = 1016, Level = LogLevel.Information, Message = "Shard {Shard}: its removal waits: {Reason}")]
    public static partial void ShardRemovalWaits(ILogger logger, int shard, string reason);

    [LoggerMessage(EventId = 1017, Level = LogLevel.Warning, Message = "Shard {Shard}: whether its removal began could not be read from the directory ({Reason}); the change goes on")]
    public static partial void RemovalNotChecked(ILogger logger, int shard, string reason);

    [LoggerMessage(EventId = 1018, Level = LogLevel.Warning, Message = "Shard {Shard} released on this silo (its removal reached releasing): nothing here uses it any more; its pools close shortly")]
    public static partial void ShardReleased(ILogger logger, int shard);

    [LoggerMessage(EventId = 1019, Level = LogLevel.Warning, Message = "Shard {Shard} is configured but was removed (its directory record says so): its databases are not created or migrated, and this silo does not serve it; take it out of the configuration")]
    public static partial void ConfiguredShardRemoved(ILogger logger, int shard);

    [LoggerMessage(EventId = 1008, Level = LogLevel.Information, Message = "Shard {Shard}: replica {Replica} caught up and admitted: it serves reads and counts toward acknowledgements")]
    public static partial void ReplicaAdmitted(ILogger logger, int shard, int replica);

    [LoggerMessage(EventId = 1012, Level = LogLevel.Information, Message = "Shard {Shard}: replica {Replica} removed: it counts toward no acknowledgement and nothing reads or fills it")]
    public static partial void ReplicaRemoved(ILogger logger, int shard, int replica);

    [LoggerMessage(EventId = 1009, Level = LogLevel.Information, Message = "Shard {Shard}: this silo follows the directory's replicas ({Replicas}, joining: {Joining})")]
    public static partial void ReplicasFollowed(ILogger logger, int shard, int replicas, string joining);

    [LoggerMessage(EventId = 1011, Level = LogLevel.Warning, Message = "Shard {Shard}: the writer could not read the directory's replicas at activation ({Problem}); it counts the ones this silo follows")]
    public static partial void ReplicasNotFollowed(ILogger logger, int shard, string problem);

    [LoggerMessage(EventId = 1010, Level = LogLevel.Warning, Message = "Shard {Shard}: replica {Replica} was not admitted yet: {Problem}")]
    public static partial void ReplicaNotAdmitted(ILogger logger, int shard, int replica, string problem);

    [LoggerMessage(EventId = 8004, Level = LogLevel.Debug, Message = "Journal stream {Provider} of shard {Shard} read {Count} entries after position {Position} of replica {Replica}")]
    public static partial void StreamPageRead(ILogger logger, string provider, int shard, int count, long position, int replica);

    [LoggerMessage(EventId = 8005, Level = LogLevel.Debug, Message = "Journal stream {Stream}: a cursor from {Token} starts at cache index {Index} (the cache holds {Offset} to {End})")]
    public static partial void StreamCursorStarted(ILogger logger, StreamId stream, string token, long index, long offset, long end);
    [LoggerMessage(EventId = 9001, Level = LogLevel.Information, Message = "Restore of shard {Shard} replica {Replica} begun: a backup at position {Position} loads into database {Staging}")]
    public static partial void RestoreBegun(ILogger logger, int shard, int replica, long position, string staging);

    [LoggerMessage(EventId = 9002, Level = LogLevel.Information, Message = "Restore of shard {Shard} replica {Replica} completed at position {Position}; its new identity is {ReplicaId}")]
    public static partial void RestoreCompleted(ILogger logger, int shard, int replica, long position, Guid replicaId);

    [LoggerMessage(EventId = 9003, Level = LogLevel.Warning, Message = "Restore of shard {Shard} replica {Replica} discarded: no progress for {Seconds} s")]
    public static partial void RestoreAbandoned(ILogger logger, int shard, int replica, double seconds);

    [LoggerMessage(EventId = 9004, Level = LogLevel.Warning, Message = "Restore database {Staging} could not be dropped ({Problem}); the next restore of its replica drops it")]
    public static partial void RestoreLeftover(ILogger logger, string staging, string problem);

    [LoggerMessage(EventId = 9005, Level = LogLevel.Warning, Message = "Shard {Shard}: {Count} acknowledged entries of origin {Origin} past position {Held} are on no replica after a restore (lost with their servers); strong reads no longer wait for them")]
    public static partial void AcknowledgedLost(ILogger logger, int shard, long count, Guid origin, long held);

    [LoggerMessage(EventId = 10001, Level = LogLevel.Information, Message = "Projection {Projection} of shard {Shard} replica {Replica} rebuilt: swapped in at position {Position} after {Seconds} s")]
    public static partial void RebuildSwapped(ILogger logger, string projection, int shard, int replica, long position, double seconds);

    [LoggerMessage(EventId = 10003, Level = LogLevel.Warning, Message = "Rebuild of {Projection} on shard {Shard} replica {Replica} started over: what it folds for changed since it began (a migration of the view, a new version of the rule)")]
    public static partial void RebuildRestarted(ILogger logger, string projection, int shard, int replica);

    [LoggerMessage(EventId = 10002, Level = LogLevel.Warning, Message = "Rebuild of {Projection} on shard {Shard} replica {Replica} stopped; it goes on at the next wake")]
    public static partial void RebuildFailed(ILogger logger, Exception exception, string projection, int shard, int replica);

    [LoggerMessage(EventId = 10004, Level = LogLevel.Information, Message = "Rebuild of {Projection} on shard {Shard} replica {Replica} canceled; its last fold stopped ({Reason})")]
    public static partial void RebuildCanceled(ILogger logger, string projection, int shard, int replica, string reason);

    [LoggerMessage(EventId = 1013, Level = LogLevel.Warning, Message = "A database failure escaped {Interface}.{Method}; the caller was told Unavailable (outcome unknown, retriable)")]
    public static partial void DatabaseFailureEscaped(ILogger logger, Exception exception, string @interface, string method);
}
