using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using PR2.Grains.Configuration;
using PR2.Grains.Agents;
using PR2.Grains.Replication;
using PR2.Grains.Storage;

namespace PR2.Grains;

/// <summary>
/// The directory (key 0). It holds no state of its own: the shard map and agent registrations are the
/// records of <c>shard/{code}</c> and <c>agent/{name}</c> in shard 0, written as ordinary messages, and the
/// object directory is a table in shard 0 kept by an agent. So it survives any restart, and its history
/// is in shard 0's journal.
/// </summary>
public sealed class DirectoryGrain(ShardRegistry shards, AgentCatalog agents, IOptions<TopologyOptions> topology, ConnectionKeys connections,
    SchemaMigrator migrator, TopologyFollower follower, ILogger<DirectoryGrain> logger)
    : Grain, IDirectoryGrain
{
    private const int ControlShard = 0;
    private const string Sender = "directory";

    public async Task Sync()
    {
        foreach (var shard in shards.ShardCodes)
        {
            // A shard added at runtime (AddShard) is not configuration's: its record is its own.
            var configured = topology.Value.Shards.FirstOrDefault(s => int.Parse(s.Key, CultureInfo.InvariantCulture) == shard).Value;
            if (configured is null)
            {
                continue;
            }

            // The primary is the journal writer's to decide (it records fail-overs here); configuration sets the rest, but
            // for the replicas added at runtime (AddReplica), which the record keeps after the configured ones.
            var count = configured.Replicas.Count;
            var added = await AddedReplicasAsync(shard, count);
            var desired = new JsonObject
            {
                ["replicas"] = new JsonArray([.. shards.Get(shard).Replicas.Take(count).Select(r => (JsonNode)Endpoint(r)), .. added.Select(a => (JsonNode)a.Endpoint)]),
                ["connections"] = new JsonArray([.. Enumerable.Range(0, count).Select(i => (JsonNode)$"Pr2:Topology:Shards:{shard}:Replicas:{i}"), .. added.Select(a => (JsonNode)a.Key)]),
                ["ackPolicy"] = configured.AckPolicy.ToString(),
                ["status"] = "up",
            };
            // What the shard is: configuration seeds it; after that the record is changed by SetShardMetadata alone. A
            // shard whose removal began is left as its record says, configured or not (configuration cannot revive it).
            await RecordAsync($"shard/{shard}", desired, leaveAlone: state => state["removal"] is not null, initial: new JsonObject
            {
                ["primary"] = 0,
                ["joining"] = null,
                ["removed"] = null,
                ["replicaStates"] = new JsonArray([.. Enumerable.Range(0, count).Select(_ => (JsonNode)ReplicaHealth.Up)]),
                ["name"] = configured.Name,
                ["owner"] = configured.Owner,
                ["labels"] = new JsonObject(configured.Labels.Select(l => KeyValuePair.Create(l.Key, (JsonNode?)l.Value))),
            });
        }

        foreach (var agent in agents.Agents)
        {
            var follows = new JsonArray([.. shards.ShardCodes.Where(agent.Follows).Select(s => (JsonNode)s)]);
            await RecordAsync($"agent/{agent.Name}", new JsonObject { ["follows"] = follows });
        }
    }

    public async Task<bool> RecordReplicaStates(int shard, IReadOnlyList<string> states)
    {
        var actorId = $"shard/{shard}";
        var actor = GrainFactory.GetGrain<IActorGrain>(ControlShard, actorId, null);
        var current = await actor.GetRecord();
        var record = current.State is { } text ? JsonNode.Parse(text) : null;
        var recorded = record?["replicaStates"];
        var desired = new JsonArray([.. states.Select(state => (JsonNode)state)]);
        if (current.Status != RecordStatus.Live || JsonNode.DeepEquals(recorded, desired))
        {
            return current.Status == RecordStatus.Live;
        }

        if (record?["replicas"] is JsonArray replicas && replicas.Count != states.Count)
        {
            // A silo that has not followed a replica added meanwhile: its states are of fewer replicas than recorded.
            return false;
        }

        try
        {
            await actor.Send(new Message(MessageIds.New(), "anti-entropy", new ActorRef(ControlShard, actorId), MessageKind.Modify,
                new JsonObject { ["replicaStates"] = desired }.ToJsonString(), current.Version));
            return true;
        }
        catch (Pr2Exception e) when (e.Code == ErrorCode.VersionMismatch)
        {
            // The record changed meanwhile (a new primary, another silo's sync): the next pass compares again.
            return false;
        }
    }

    public async Task<IReadOnlyList<ShardEntry>> GetShards() =>
        [.. (await ReadRecordsAsync("shard", shards.ShardCodes.Select(s => $"shard/{s}"))).Select(TryToShardEntry).OfType<ShardEntry>().OrderBy(e => e.Shard)];

    // A record written as a shard's that is not one (its key no code, a member missing: only a message to a reserved actor
    // that got past the door could do that) is left out rather than failing the whole list on every silo.
    internal static ShardEntry? TryToShardEntry(ActorRecord record)
    {
        try
        {
            return ToShardEntry(record);
        }
        catch (Exception e) when (e is FormatException or OverflowException or NullReferenceException or InvalidOperationException or System.Text.Json.JsonException)
        {
            return null;
        }
    }

    public async Task<ShardEntry> AddShard(NewShard shard)
    {
        if (NewShardRules.Problem(shard) is { } problem)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, problem);
        }

        var missing = shard.Connections.Where(key => connections.Resolve(key) is null).ToList();
        if (missing.Count > 0)
        {
            throw new Pr2Exception(ErrorCode.BadMessage,
                $"configuration key {string.Join(", ", missing)} is not set on this silo; every silo needs each key the shard names (from a secret or an environment variable) before it is added");
        }

        var resolved = shard.Connections.Select(key => connections.Resolve(key)!).ToList();
        var endpoints = resolved.Select(Endpoint).ToList();
        if (endpoints.Distinct(StringComparer.OrdinalIgnoreCase).Count() != endpoints.Count)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, "two replicas name the same database; each replica needs a database of its own");
        }

        if (topology.Value.Shards.Keys.Any(key => int.Parse(key, CultureInfo.InvariantCulture) == shard.Shard))
        {
            throw new Pr2Exception(ErrorCode.RecordExists, $"shard {shard.Shard} is configured already; choose another code");
        }

        var actorId = $"shard/{shard.Shard}";
        var actor = GrainFactory.GetGrain<IActorGrain>(ControlShard, actorId, null);
        if (await actor.GetRecord() is { Status: RecordStatus.Live } recorded)
        {
            return await JoinedAsync(SameShard(ToShardEntry(recorded), shard));
        }

        // Databases and schema first, through data sources of their own: the directory records a shard only when every
        // replica can take writes, and no silo (this one included) uses it before it is recorded. A retry after a failure
        // here prepares it again (each step is idempotent).
        var policy = shard.AckPolicy is null ? AckPolicy.Primary : Enum.Parse<AckPolicy>(shard.AckPolicy, ignoreCase: true);
        for (var i = 0; i < resolved.Count; i++)
        {
            try
            {
                await migrator.PrepareReplicaAsync(shard.Shard, i, resolved[i], CancellationToken.None);
            }
            catch (InvalidOperationException)
            {
                throw new Pr2Exception(ErrorCode.BadMessage,
                    $"replica {i} ({shard.Connections[i]}): its database is a replica of another shard; each shard needs databases of its own");
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or IOException or System.Net.Sockets.SocketException)
            {
                throw new Pr2Exception(ErrorCode.ShardUnavailable,
                    $"shard {shard.Shard}: replica {i} ({shard.Connections[i]}) could not be prepared ({DatabaseFailure.Describe(e)}); nothing was recorded, retry");
            }
        }

        var state = new JsonObject
        {
            ["replicas"] = new JsonArray([.. endpoints.Select(e => (JsonNode)e)]),
            ["connections"] = new JsonArray([.. shard.Connections.Select(key => (JsonNode)key)]),
            ["ackPolicy"] = policy.ToString(),
            ["status"] = "up",
            ["primary"] = 0,
            ["replicaStates"] = new JsonArray([.. resolved.Select(_ => (JsonNode)ReplicaHealth.Up)]),
            ["name"] = shard.Name,
            ["owner"] = shard.Owner,
            ["labels"] = new JsonObject((shard.Labels ?? new Dictionary<string, string>()).Select(l => KeyValuePair.Create(l.Key, (JsonNode?)l.Value))),
        };
        try
        {
            await actor.Send(new Message(MessageIds.New(), Sender, new ActorRef(ControlShard, actorId), MessageKind.Insert, state.ToJsonString()));
        }
        catch (Pr2Exception e) when (e.Code == ErrorCode.RecordExists)
        {
            // Added at the same moment by another call: the same shard is this call's answer, another one is refused below.
        }

        return await JoinedAsync(SameShard(ToShardEntry(await actor.GetRecord()), shard));
    }

    // The replicas the record of a configured shard lists after its configured ones: added at runtime (AddReplica).
    private async Task<List<(string Endpoint, string Key)>> AddedReplicasAsync(int shard, int configured)
    {
        var record = await GrainFactory.GetGrain<IActorGrain>(ControlShard, $"shard/{shard}", null).GetRecord();
        if (record.Status != RecordStatus.Live || TryToShardEntry(record) is not { Connections: { } keys } entry || keys.Count != entry.Replicas.Count)
        {
            return [];
        }

        return [.. entry.Replicas.Zip(keys).Skip(configured).TakeWhile(r => r.Second.StartsWith(NewShardRules.KeyPrefix, StringComparison.Ordinal))];
    }

    public async Task<ShardEntry> AddReplica(int shard, string connection)
    {
        if (shard == ControlShard)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, "shard 0's replicas are configured (Pr2:Topology:Shards:0); they are not added at runtime");
        }

        if (NewShardRules.KeyProblem(connection) is { } problem)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, problem);
        }

        var actorId = $"shard/{shard}";
        var actor = GrainFactory.GetGrain<IActorGrain>(ControlShard, actorId, null);
        for (var attempt = 0; ; attempt++)
        {
            var current = await actor.GetRecord();
            if (current.Status != RecordStatus.Live || TryToShardEntry(current) is not { } entry)
            {
                throw NotInDirectory(shard);
            }

            if (entry.Removal is { } removal)
            {
                throw BeingRemoved(shard, removal, "it takes no new replicas");
            }

            if (entry.Connections is not { } keys || keys.Count != entry.Replicas.Count)
            {
                throw new Pr2Exception(ErrorCode.BadMessage, $"shard {shard}'s record names no configuration keys for its replicas (written by an older version); restart a silo to record them first");
            }

            if (keys.ToList().FindIndex(k => string.Equals(k, connection, StringComparison.OrdinalIgnoreCase)) is var known and >= 0 && entry.Removed?.Contains(known) == true)
            {
                throw new Pr2Exception(ErrorCode.BadMessage, $"{connection} names replica {known} of shard {shard}, which was removed; a new replica needs a database (and key) of its own");
            }

            if (keys.Contains(connection, StringComparer.OrdinalIgnoreCase))
            {
                // Added before (a retry): the entry as it is now, joining or serving.
                await follower.RefreshShardAsync(shard);
                return entry;
            }

            if (entry.Replicas.Count >= NewShardRules.MaxReplicas)
            {
                throw new Pr2Exception(ErrorCode.BadMessage, $"shard {shard} has {entry.Replicas.Count} replicas, the most a shard can have");
            }

            if (connections.Resolve(connection) is not { } connectionString)
            {
                throw new Pr2Exception(ErrorCode.BadMessage,
                    $"configuration key {connection} is not set on this silo; every silo needs it (from a secret or an environment variable) before the replica is added");
            }

            string endpoint;
            try
            {
                // A database that does not answer must not hold the directory (and every silo's round) for long.
                connectionString = new NpgsqlConnectionStringBuilder(connectionString) { Timeout = Math.Min(new NpgsqlConnectionStringBuilder(connectionString).Timeout, 5) }.ConnectionString;
                endpoint = Endpoint(connectionString);
            }
            catch (ArgumentException)
            {
                throw new Pr2Exception(ErrorCode.BadMessage, $"configuration key {connection} does not hold a valid PostgreSQL connection string");
            }

            if (entry.Replicas.Contains(endpoint, StringComparer.OrdinalIgnoreCase))
            {
                throw new Pr2Exception(ErrorCode.BadMessage, $"{connection} names {endpoint}, which is a replica of shard {shard} already; a new replica needs a database of its own");
            }

            // The database first, as a new replica of the shard (its own identity, an empty journal): the directory records
            // a replica only once it can take entries. A retry after a failure prepares it again (each step is idempotent).
            var index = entry.Replicas.Count;
            try
            {
                await migrator.PrepareReplicaAsync(shard, index, connectionString, CancellationToken.None);
                // Another name (a host alias) of one of the shard's replicas is that replica: one copy counted twice. And a new
                // replica starts empty: a copy of a replica's database would share its identity and journal.
                switch (await SameAsExistingAsync(shard, connectionString))
                {
                    case { Same: { } same }:
                        throw new Pr2Exception(ErrorCode.BadMessage, $"{connection} names replica {same} of shard {shard} under another address; a new replica needs a database of its own");
                    case { Unsure: { } unsure }:
                        throw new Pr2Exception(ErrorCode.ShardUnavailable,
                            $"shard {shard}: replica {unsure} does not answer, so the new database cannot be told apart from it; nothing was recorded, retry when it answers");
                    case { Entries: > 0 } holding:
                        throw new Pr2Exception(ErrorCode.BadMessage,
                            $"{connection}: its database already holds {holding.Entries} journal entries (a copy of a replica?); a new replica starts from an empty database");
                }
            }
            catch (InvalidOperationException)
            {
                // The migrator's one refusal: the database is claimed for another shard.
                throw new Pr2Exception(ErrorCode.BadMessage, $"{connection}: its database is a replica of another shard; a new replica needs a database of its own");
            }
            catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.InvalidPassword or PostgresErrorCodes.InvalidAuthorizationSpecification
                                                  or PostgresErrorCodes.InsufficientPrivilege)
            {
                throw new Pr2Exception(ErrorCode.BadMessage,
                    $"shard {shard}: the new replica ({connection}) refused its connection string's user ({DatabaseFailure.Describe(e)}); fix the key's value on every silo, nothing was recorded");
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException or IOException or System.Net.Sockets.SocketException)
            {
                throw new Pr2Exception(ErrorCode.ShardUnavailable,
                    $"shard {shard}: the new replica ({connection}) could not be prepared ({DatabaseFailure.Describe(e)}); nothing was recorded, retry");
            }

            var patch = new JsonObject
            {
                ["replicas"] = new JsonArray([.. entry.Replicas.Select(r => (JsonNode)r), endpoint]),
                ["connections"] = new JsonArray([.. keys.Select(k => (JsonNode)k), connection]),
                ["replicaStates"] = new JsonArray([.. entry.ReplicaStates.Select(r => (JsonNode)r), ReplicaHealth.CatchingUp]),
                ["joining"] = new JsonArray([.. (entry.Joining ?? []).Select(j => (JsonNode)j), index]),
            };
            try
            {
                await actor.Send(new Message(MessageIds.New(), Sender, new ActorRef(ControlShard, actorId), MessageKind.Modify, patch.ToJsonString(), current.Version));
                Log.ReplicaAdded(logger, shard, index);
                await follower.RefreshShardAsync(shard);
                return ToShardEntry(await actor.GetRecord());
            }
            catch (Pr2Exception e) when (e.Code == ErrorCode.VersionMismatch)
            {
                // Changed meanwhile (replica states, a primary, another replica added): read it again.
                if (attempt >= 5)
                {
                    throw new Pr2Exception(ErrorCode.ShardUnavailable, $"shard {shard}'s directory record kept changing while the replica was recorded; nothing was recorded, retry");
                }
            }
        }
    }

    // Whether the prepared database is one of the shard's live replicas (the index whose identity it has), a live replica
    // did not answer (its index: the two cannot be told apart), and how many journal entries it holds.
    private async Task<(int? Same, int? Unsure, long Entries)> SameAsExistingAsync(int shard, string connectionString)
    {
        await using var added = NpgsqlDataSource.Create(connectionString);
        using var reading = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        var vector = await VersionVector.ReadAsync(added, reading.Token).WaitAsync(reading.Token);
        var entries = vector.Positions.Values.Sum();
        var set = shards.Get(shard);
        foreach (var i in set.Live)
        {
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                if ((await VersionVector.ReadAsync(set.Replicas[i], timeout.Token).WaitAsync(timeout.Token)).ReplicaId == vector.ReplicaId)
                {
                    return (i, null, entries);
                }
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
            {
                return (null, i, entries);
            }
        }

        return (null, null, entries);
    }

    // This silo takes the recorded shard up before answering, as every other silo does from the directory.
    private async Task<ShardEntry> JoinedAsync(ShardEntry entry)
    {
        await follower.KnowsAsync(entry.Shard);
        return entry;
    }

    // The recorded shard as the answer to adding it again, or why it cannot be.
    private static ShardEntry SameShard(ShardEntry recorded, NewShard asked) =>
        recorded.Connections is { } connections && connections.SequenceEqual(asked.Connections, StringComparer.Ordinal)
            && string.Equals(recorded.AckPolicy, asked.AckPolicy ?? nameof(AckPolicy.Primary), StringComparison.OrdinalIgnoreCase)
            ? recorded
            : throw new Pr2Exception(ErrorCode.RecordExists,
                $"shard {asked.Shard} exists already{(recorded.Connections is { } keys ? $" with connections {string.Join(", ", keys)} and ack policy {recorded.AckPolicy}" : "")}; choose another code");

    public async Task<ShardEntry> SetShardMetadata(int shard, string? name, string? owner, IReadOnlyDictionary<string, string?> labels)
    {
        if (ShardMetadataRules.Problem(name, owner, labels) is { } problem)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, problem);
        }

        var actorId = $"shard/{shard}";
        var actor = GrainFactory.GetGrain<IActorGrain>(ControlShard, actorId, null);
        // A merge patch of the members given: another change in between (a fail-over, replica states) is read and kept.
        var patch = new JsonObject();
        if (name is not null)
        {
            patch["name"] = name.Length == 0 ? null : name;
        }

        if (owner is not null)
        {
            patch["owner"] = owner.Length == 0 ? null : owner;
        }

        if (labels.Count > 0)
        {
            patch["labels"] = new JsonObject(labels.Select(l => KeyValuePair.Create(l.Key, (JsonNode?)l.Value)));
        }

        for (var attempt = 0; ; attempt++)
        {
            var current = await actor.GetRecord();
            if (current.Status != RecordStatus.Live)
            {
                throw NotInDirectory(shard);
            }

            if (TryToShardEntry(current)?.Removal is { } removal)
            {
                throw BeingRemoved(shard, removal, "what it is no longer changes");
            }

            // The labels after the merge patch: a null value removes one.
            var after = new HashSet<string>((JsonNode.Parse(current.State!)!["labels"] as JsonObject)?.Select(l => l.Key) ?? [], StringComparer.Ordinal);
            foreach (var (key, value) in labels)
            {
                _ = value is null ? after.Remove(key) : after.Add(key);
            }

            var labelCount = after.Count;
            if (labelCount > ShardMetadataRules.MaxLabels)
            {
                throw new Pr2Exception(ErrorCode.BadMessage, $"a shard has at most {ShardMetadataRules.MaxLabels} labels; shard {shard} would have {labelCount}");
            }

            try
            {
                await actor.Send(new Message(MessageIds.New(), Sender, new ActorRef(ControlShard, actorId), MessageKind.Modify, patch.ToJsonString(), current.Version));
                return ToShardEntry(await actor.GetRecord());
            }
            catch (Pr2Exception e) when (e.Code == ErrorCode.VersionMismatch && attempt < 5)
            {
                // Changed meanwhile: read it again and patch that.
            }
        }
    }

    internal static ShardEntry ToShardEntry(ActorRecord record)
    {
        var state = JsonNode.Parse(record.State!)!;
        return new ShardEntry(
            int.Parse(record.Actor.Key, CultureInfo.InvariantCulture),
            [.. state["replicas"]!.AsArray().Select(r => r!.GetValue<string>())],
            state["primary"]!.GetValue<int>(),
            state["status"]!.GetValue<string>(),
            record.Version,
            [.. state["replicaStates"]?.AsArray().Select(r => r!.GetValue<string>()) ?? []],
            state["name"]?.GetValue<string>(),
            state["owner"]?.GetValue<string>(),
            (state["labels"] as JsonObject)?.Where(l => l.Value is not null).ToDictionary(l => l.Key, l => l.Value!.GetValue<string>()),
            state["connections"] is JsonArray connections ? [.. connections.Select(c => c!.GetValue<string>())] : null,
            state["ackPolicy"]?.GetValue<string>(),
            state["joining"] is JsonArray joining && joining.Count > 0 ? [.. joining.Select(j => j!.GetValue<int>())] : null,
            state["removed"] is JsonArray removed && removed.Count > 0 ? [.. removed.Select(r => r!.GetValue<int>())] : null,
            state["removal"] is JsonObject removal ? ToRemoval(removal) : null);
    }

    private static ShardRemoval ToRemoval(JsonObject removal) => new(
        removal["state"]!.GetValue<string>(),
        DateTimeOffset.Parse(removal["since"]!.GetValue<string>(), CultureInfo.InvariantCulture),
        removal["sealedHeads"] is JsonObject heads
            ? heads.ToDictionary(h => int.Parse(h.Key, CultureInfo.InvariantCulture), h => h.Value!.GetValue<long>())
            : null);

    private static JsonObject ToJson(ShardRemoval removal) => new()
    {
        ["state"] = removal.State,
        ["since"] = removal.Since.ToString("O", CultureInfo.InvariantCulture),
        ["sealedHeads"] = removal.SealedHeads is { } heads
            ? new JsonObject(heads.OrderBy(h => h.Key).Select(h => KeyValuePair.Create(h.Key.ToString(CultureInfo.InvariantCulture), (JsonNode?)h.Value)))
            : null,
    };

    public Task<ShardEntry> RemoveShard(int shard)
    {
        if (shard == ControlShard)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, "shard 0 is the control shard (the directory of every other shard); it cannot be removed");
        }

        // Asked again, it answers where the removal stands: starting it twice is one removal.
        return ChangeRemovalAsync(shard, removal => removal ?? new ShardRemoval(ShardRemoval.Sealing, DateTimeOffset.UtcNow));
    }

    public Task<ShardEntry> AdvanceShardRemoval(int shard, string state, IReadOnlyDictionary<int, long>? sealedHeads)
    {
        if (ShardRemoval.Order(state) < 1)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, $"a removal advances to one of {string.Join(", ", ShardRemoval.States.Skip(1))}, not {state}");
        }

        if (state == ShardRemoval.Draining && sealedHeads is null)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, $"a removal enters {state} with the heads it was sealed at (later states keep them)");
        }

        // Only forward, one state at a time: a repeat (a removal grain that ran again after a crash) finds it done.
        return ChangeRemovalAsync(shard, removal => removal is null
            ? throw new Pr2Exception(ErrorCode.BadMessage, $"shard {shard} is not being removed")
            : ShardRemoval.Order(removal.State) >= ShardRemoval.Order(state) ? removal
            : ShardRemoval.Order(removal.State) + 1 != ShardRemoval.Order(state)
                ? throw new Pr2Exception(ErrorCode.BadMessage, $"shard {shard}'s removal is {removal.State}; it cannot skip to {state}")
                : new ShardRemoval(state, DateTimeOffset.UtcNow, sealedHeads ?? removal.SealedHeads));
    }

    // One journaled change of the removal in the shard's record, expecting the version read (read again when it moved on).
    private async Task<ShardEntry> ChangeRemovalAsync(int shard, Func<ShardRemoval?, ShardRemoval> next)
    {
        var actorId = $"shard/{shard}";
        var actor = GrainFactory.GetGrain<IActorGrain>(ControlShard, actorId, null);
        for (var attempt = 0; ; attempt++)
        {
            var current = await actor.GetRecord();
            if (current.Status != RecordStatus.Live || TryToShardEntry(current) is not { } entry)
            {
                throw NotInDirectory(shard);
            }

            var removal = next(entry.Removal);
            if (removal == entry.Removal)
            {
                return entry;
            }

            var patch = new JsonObject
            {
                ["status"] = removal.State == ShardRemoval.Removed ? "removed" : "removing",
                ["removal"] = ToJson(removal),
            };
            try
            {
                await actor.Send(new Message(MessageIds.New(), Sender, new ActorRef(ControlShard, actorId), MessageKind.Modify, patch.ToJsonString(), current.Version));
                Log.ShardRemovalAdvanced(logger, shard, removal.State);
                return ToShardEntry(await actor.GetRecord());
            }
            catch (Pr2Exception e) when (e.Code == ErrorCode.VersionMismatch && attempt < 10)
            {
                // Changed meanwhile (a fail-over recorded, replica states): read it again.
            }
        }
    }

    /// <summary>The shard's removal as its directory record says now; null while it is not being removed (or not recorded).</summary>
    internal static async Task<ShardRemoval?> RemovalOfAsync(IGrainFactory grains, int shard)
    {
        var record = await grains.GetGrain<IActorGrain>(ControlShard, $"shard/{shard}", null).GetRecord();
        return record.Status == RecordStatus.Live ? TryToShardEntry(record)?.Removal : null;
    }

    /// <summary>Refuses (<see cref="ErrorCode.ShardRemoved"/>) when the shard's directory record says its removal began.</summary>
    internal static async Task RefuseIfBeingRemovedAsync(IGrainFactory grains, int shard, string what)
    {
        if (await RemovalOfAsync(grains, shard) is { } removal)
        {
            throw BeingRemoved(shard, removal, what);
        }
    }

    private Pr2Exception NotInDirectory(int shard) =>
        new(ErrorCode.UnknownShard, $"shard {shard} is not in the directory; known shards: {string.Join(", ", shards.ShardCodes)}");

    // Replicas, primaries and metadata of a shard being removed no longer change: what the removal seals is what it drains.
    internal static Pr2Exception BeingRemoved(int shard, ShardRemoval removal, string what) =>
        new(ErrorCode.ShardRemoved, $"shard {shard} is being removed ({removal.State} since {removal.Since:u}); {what}");

    public async Task<IReadOnlyDictionary<string, IReadOnlyList<int>>> GetAgents()
    {
        var result = new SortedDictionary<string, IReadOnlyList<int>>(StringComparer.Ordinal);
        foreach (var record in await ReadRecordsAsync("agent", agents.Agents.Select(a => $"agent/{a.Name}")))
        {
            result[record.Actor.Key] = [.. JsonNode.Parse(record.State!)!["follows"]!.AsArray().Select(s => s!.GetValue<int>())];
        }

        return result;
    }

    public async Task<IReadOnlyList<ActorTypeCount>> GetActorTypes()
    {
        await using var command = (await ControlAsync()).CreateCommand("""
            select actor_type, count(*) filter (where status = 1), count(*) filter (where status = 2)
            from pr2_object_directory where not (shard = any($1)) group by actor_type order by actor_type
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = shards.RemovedCodes.ToArray() });
        var types = new List<ActorTypeCount>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            types.Add(new ActorTypeCount(reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2)));
        }

        return types;
    }

    public async Task<IReadOnlyList<ObjectLocation>> FindObjects(string? type, string? prefix, int limit)
    {
        if (limit is < 1 or > 1000)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, $"limit must be between 1 and 1000, got {limit}");
        }

        var pattern = LikePattern.StartingWith(prefix);
        await using var command = (await ControlAsync()).CreateCommand("""
            select shard, actor_id, status, first_position from pr2_object_directory
            where ($1::text is null or actor_type = $1) and actor_id like $2 and not (shard = any($4))
            order by actor_id, shard limit $3
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)type ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter { Value = pattern });
        command.Parameters.Add(new NpgsqlParameter { Value = limit });
        // A removed shard's rows are purged at its removal's end; one a late batch wrote after that is not shown.
        command.Parameters.Add(new NpgsqlParameter { Value = shards.RemovedCodes.ToArray() });
        var found = new List<ObjectLocation>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            found.Add(new ObjectLocation(reader.GetInt32(0), reader.GetString(1), (RecordStatus)reader.GetInt16(2), reader.GetInt64(3)));
        }

        return found;
    }

    // The object directory is kept in shard 0's primary as its writer names it (another silo may have failed it over).
    private async Task<NpgsqlDataSource> ControlAsync()
    {
        var set = shards.Get(ControlShard);
        return set.Readers[await CurrentPrimary.AskAsync(GrainFactory, set, TimeSpan.FromSeconds(2))];
    }

    // Sends an insert or a modify (expecting the version read) only when the configured members differ from
    // the record's; members the record has beyond them (and beyond <paramref name="initial"/>, which only seed a new
    // record) are removed.
    private async Task RecordAsync(string actorId, JsonObject desired, JsonObject? initial = null, Func<JsonObject, bool>? leaveAlone = null)
    {
        var actor = GrainFactory.GetGrain<IActorGrain>(ControlShard, actorId, null);
        var current = await actor.GetRecord();
        var state = current.State is { } text ? JsonNode.Parse(text)!.AsObject() : null;
        if (state is not null && leaveAlone?.Invoke(state) == true)
        {
            return; // decided on the version read: a change after it makes the modify below a VersionMismatch
        }

        if (state is not null && desired.All(member => JsonNode.DeepEquals(state[member.Key], member.Value))
            && state.All(member => desired.ContainsKey(member.Key) || initial?.ContainsKey(member.Key) == true))
        {
            return;
        }

        var kind = current.Status == RecordStatus.Missing ? MessageKind.Insert : MessageKind.Modify;
        var full = (JsonObject)desired.DeepClone();
        foreach (var (name, value) in initial ?? [])
        {
            // Seeded when the record is created; after that the record's own (absent stays absent).
            full[name] = state is null ? value?.DeepClone() : state[name]?.DeepClone();
        }

        var body = kind == MessageKind.Insert ? full.ToJsonString() : ReplacementPatch(state!, full).ToJsonString();
        try
        {
            await actor.Send(new Message(MessageIds.New(), Sender, new ActorRef(ControlShard, actorId), kind, body, current.Version));
        }
        catch (Pr2Exception e) when (e.Code is ErrorCode.VersionMismatch or ErrorCode.RecordExists)
        {
            // Another silo synced at the same moment; what it wrote is the same configuration.
        }
    }

    // A merge patch that turns current into desired: members missing from desired are removed with null.
    private static JsonObject ReplacementPatch(JsonObject current, JsonObject desired)
    {
        var patch = (JsonObject)desired.DeepClone();
        foreach (var (name, _) in current)
        {
            if (!desired.ContainsKey(name))
            {
                patch[name] = null;
            }
        }

        return patch;
    }

    private async Task<IReadOnlyList<ActorRecord>> ReadRecordsAsync(string type, IEnumerable<string> configured)
    {
        // The configured ones plus any others the object directory knows in shard 0 (it may lag a little);
        // each record comes from its actor, which folds the journal.
        var known = (await FindObjects(type, null, 1000)).Where(o => o.Shard == ControlShard).Select(o => o.ActorId);
        var ids = configured.Union(known, StringComparer.Ordinal);
        var records = await Task.WhenAll(ids.Select(id => GrainFactory.GetGrain<IActorGrain>(ControlShard, id, null).GetRecord()));
        return [.. records.Where(r => r.Status == RecordStatus.Live)];
    }

    private static string Endpoint(NpgsqlDataSource source) => Endpoint(source.ConnectionString);

    private static string Endpoint(string connectionString) => ReplicaEndpoint.Of(connectionString);
}
