using Microsoft.Extensions.Logging;
using Npgsql;

namespace PR2.Grains.Storage;

/// <summary>
/// Brings every replica database of every configured shard to the current schema at start-up:
/// creates a missing database, applies the scripts it has not seen (each in its own transaction),
/// and records which shard the database belongs to. Silos starting together take turns through a
/// session advisory lock, so a script is never applied twice. A server that does not answer does not
/// stop the silo (the cluster must start with one server down): its databases are migrated in the
/// background once it answers, and until then the shard's health checks see that replica as down.
/// </summary>
public sealed class SchemaMigrator(ShardRegistry shards, ILogger<SchemaMigrator> logger)
{
    // "PR2S" as an integer: the advisory lock key that serializes migrations on one database.
    public const long MigrationLockKey = 0x50523253;

    private static readonly TimeSpan RetryInterval = TimeSpan.FromSeconds(2);

    private readonly IReadOnlyList<SchemaScript> _scripts = SchemaScript.LoadEmbedded();

    private readonly CancellationTokenSource _stopping = new();

    private readonly System.Collections.Concurrent.ConcurrentDictionary<(int Shard, int Replica), bool> _deferred = new();

    /// <summary>Replicas whose schema waits for their server to answer (shown by the silo's readiness check).</summary>
    public IReadOnlyCollection<(int Shard, int Replica)> Deferred => [.. _deferred.Keys];

    public async Task MigrateAllAsync(CancellationToken cancellationToken)
    {
        var replicas = from code in shards.ShardCodes
                       let set = shards.Get(code)
                       from i in Enumerable.Range(0, set.Replicas.Count)
                       select (Shard: code, Index: i, Source: set.Replicas[i], ConnectionString: set.ConnectionStrings[i]);
        var all = replicas.ToList();
        // Shard 0 first: its directory says which configured shards were removed, whose databases are not made again.
        await Task.WhenAll(all.Where(r => r.Shard == 0).Select(r => MigrateOrDeferAsync(r.Shard, r.Index, r.Source, r.ConnectionString, cancellationToken)));
        var removed = shards.Contains(0) ? await RemovedShardsAsync(shards.Get(0), cancellationToken) : [];
        foreach (var code in (removed ?? []).Where(shards.Contains))
        {
            shards.TryRemove(code);
            Log.ConfiguredShardRemoved(logger, code);
        }

        // With no replica of shard 0 answering, whether a configured shard was removed is not known: its databases are
        // migrated where they exist, never created (one dropped after its removal would come back empty, without the
        // retired marker that refuses writes); a missing one waits until the directory answers.
        await Task.WhenAll(all.Where(r => r.Shard != 0 && removed?.Contains(r.Shard) != true)
            .Select(r => MigrateOrDeferAsync(r.Shard, r.Index, r.Source, r.ConnectionString, cancellationToken, directoryKnown: removed is not null)));
    }

    // The shards whose removal reached releasing, as any replica of shard 0 that answers has their directory records (a
    // removal acknowledged on one replica alone is real); null when none answers.
    private static async Task<HashSet<int>?> RemovedShardsAsync(ShardReplicaSet control, CancellationToken cancellationToken)
    {
        var removed = new HashSet<int>();
        var answered = false;
        foreach (var replica in control.Live)
        {
            try
            {
                await using var command = control.Replicas[replica].CreateCommand(
                    "select actor_id from pr2_record where actor_id like 'shard/%' and state->'removal'->>'state' in ('releasing', 'removed')");
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken))
                {
                    if (int.TryParse(reader.GetString(0).AsSpan("shard/".Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var code))
                    {
                        removed.Add(code);
                    }
                }

                answered = true;
            }
            catch (NpgsqlException)
            {
                // Not answering (or not migrated yet): another replica may.
            }
        }

        return answered ? removed : null;
    }

    /// <summary>
    /// Gives a membership database kept apart from the shards (Pr2:Silo:Membership) the membership tables. A silo cannot
    /// join without it, so while it does not answer (its HA pair failing over, say) this waits, up to
    /// <see cref="MembershipWait"/>, before the silo gives up.
    /// </summary>
    public async Task MigrateMembershipAsync(string connectionString, CancellationToken cancellationToken)
    {
        await using var source = NpgsqlDataSource.Create(connectionString);
        var deadline = DateTime.UtcNow + MembershipWait;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await MigrateDatabaseAsync(source, connectionString, script => script.Membership, cancellationToken);
                return;
            }
            catch (Exception e) when (e is NpgsqlException and not PostgresException or TimeoutException && DateTime.UtcNow < deadline && !cancellationToken.IsCancellationRequested)
            {
                Log.MembershipUnreachable(logger, e.GetBaseException().Message, attempt, deadline);
                await Task.Delay(TimeSpan.FromSeconds(Math.Min(attempt, 5)), cancellationToken);
            }
        }
    }

    /// <summary>How long a starting silo waits for its membership database to answer.</summary>
    public static readonly TimeSpan MembershipWait = TimeSpan.FromSeconds(60);

    /// <summary>
    /// The schema on every replica of a shard that joined at runtime: each failure thrown (a shard being added must not
    /// be recorded before it can take writes), or, with <paramref name="deferIfDown"/>, retried in the background as at start.
    /// </summary>
    public Task MigrateShardAsync(int code, bool deferIfDown, CancellationToken cancellationToken)
    {
        var set = shards.Get(code);
        // A removed replica's database may be gone: never created or migrated again.
        return Task.WhenAll(set.Live.Select(i => deferIfDown
            ? MigrateOrDeferAsync(code, i, set.Replicas[i], set.ConnectionStrings[i], cancellationToken)
            : MigrateReplicaAsync(code, i, set.Replicas[i], set.ConnectionStrings[i], cancellationToken)));
    }

    /// <summary>
    /// Creates the database of replica <paramref name="replicaIndex"/> of a shard being added, applies the schema and claims
    /// it for the shard, through a data source of its own (nothing is registered). Throws when it does not answer, and
    /// <see cref="InvalidOperationException"/> when it belongs to another shard.
    /// </summary>
    public async Task PrepareReplicaAsync(int shard, int replicaIndex, string connectionString, CancellationToken cancellationToken)
    {
        await using var source = NpgsqlDataSource.Create(connectionString);
        await MigrateReplicaAsync(shard, replicaIndex, source, connectionString, cancellationToken);
    }

    /// <summary>Stops the background retries (silo shutdown).</summary>
    public void Stop() => _stopping.Cancel();

    // directoryKnown: false when shard 0 did not say which shards were removed; a missing database then waits for it.
    private async Task MigrateOrDeferAsync(int shard, int replicaIndex, NpgsqlDataSource source, string connectionString, CancellationToken cancellationToken,
        bool directoryKnown = true)
    {
        try
        {
            if (!directoryKnown && !await DatabaseCreator.ExistsAsync(connectionString, cancellationToken))
            {
                Log.SchemaDeferred(logger, "no replica of shard 0 answers to say whether this shard was removed: its missing database is not created until one does", shard, replicaIndex);
                _deferred[(shard, replicaIndex)] = true;
                _ = RetryInBackgroundAsync(shard, replicaIndex, source, connectionString, untilDirectoryAnswers: true);
                return;
            }

            await MigrateReplicaAsync(shard, replicaIndex, source, connectionString, cancellationToken);
        }
        catch (Exception e) when (IsUnreachable(e) && !cancellationToken.IsCancellationRequested)
        {
            Log.SchemaDeferred(logger, e.GetBaseException().Message, shard, replicaIndex);
            _deferred[(shard, replicaIndex)] = true;
            _ = RetryInBackgroundAsync(shard, replicaIndex, source, connectionString, untilDirectoryAnswers: !directoryKnown);
        }
    }

    private async Task RetryInBackgroundAsync(int shard, int replicaIndex, NpgsqlDataSource source, string connectionString, bool untilDirectoryAnswers = false)
    {
        while (!_stopping.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(RetryInterval, _stopping.Token);
                if (shards.IsRemoved(shard))
                {
                    // Released here meanwhile: its databases may be dropped, and are never made again.
                    _deferred.TryRemove((shard, replicaIndex), out _);
                    return;
                }

                if (untilDirectoryAnswers)
                {
                    var removed = await RemovedShardsAsync(shards.Get(0), _stopping.Token);
                    if (removed is null)
                    {
                        continue;
                    }

                    if (removed.Contains(shard))
                    {
                        shards.TryRemove(shard);
                        Log.ConfiguredShardRemoved(logger, shard);
                        _deferred.TryRemove((shard, replicaIndex), out _);
                        return;
                    }

                    untilDirectoryAnswers = false;
                }

                await MigrateReplicaAsync(shard, replicaIndex, source, connectionString, _stopping.Token);
                _deferred.TryRemove((shard, replicaIndex), out _);
                return;
            }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (IsUnreachable(e))
            {
                // Still down: try again.
            }
            catch (Exception e)
            {
                Log.SchemaFailed(logger, e, shard, replicaIndex);
                return;
            }
        }
    }

    // A server stopping, crashed or still starting (a restart) answers with an error of its own, not a broken connection.
    private static bool IsUnreachable(Exception e) =>
        e is NpgsqlException { IsTransient: true } or TimeoutException or System.Net.Sockets.SocketException or IOException
            or PostgresException { SqlState: PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CrashShutdown or PostgresErrorCodes.CannotConnectNow };

    private async Task MigrateReplicaAsync(int shard, int replicaIndex, NpgsqlDataSource source, string connectionString, CancellationToken cancellationToken)
    {
        await MigrateDatabaseAsync(source, connectionString, script => shard == 0 || !script.ControlShardOnly, cancellationToken,
            (connection, token) => ClaimReplicaAsync(connection, shard, replicaIndex, token),
            script => Log.SchemaScriptApplied(logger, script.Name, shard, replicaIndex));
    }

    // connectionString: the data source's as configured (its own ConnectionString property leaves the password out).
    private async Task MigrateDatabaseAsync(NpgsqlDataSource source, string connectionString, Func<SchemaScript, bool> applies, CancellationToken cancellationToken,
        Func<NpgsqlConnection, CancellationToken, Task>? claim = null, Action<SchemaScript>? applied = null)
    {
        await DatabaseCreator.EnsureExistsAsync(connectionString, cancellationToken);
        await using var connection = await source.OpenConnectionAsync(cancellationToken);
        await ExecuteAsync(connection, $"select pg_advisory_lock({MigrationLockKey})", cancellationToken);
        try
        {
            await ExecuteAsync(connection, """
                create table if not exists pr2_schema_version (
                    version     integer primary key,
                    name        text not null,
                    applied_at  timestamptz not null default now()
                )
                """, cancellationToken);

            var done = new HashSet<int>();
            await using (var read = new NpgsqlCommand("select version from pr2_schema_version", connection))
            await using (var reader = await read.ExecuteReaderAsync(cancellationToken))
            {
                while (await reader.ReadAsync(cancellationToken))
                {
                    done.Add(reader.GetInt32(0));
                }
            }

            foreach (var script in _scripts.Where(s => !done.Contains(s.Version) && applies(s)))
            {
                await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
                await ExecuteAsync(connection, script.Sql, cancellationToken);
                await using (var record = new NpgsqlCommand("insert into pr2_schema_version (version, name) values ($1, $2)", connection))
                {
                    record.Parameters.Add(new() { Value = script.Version });
                    record.Parameters.Add(new() { Value = script.Name });
                    await record.ExecuteNonQueryAsync(cancellationToken);
                }

                await transaction.CommitAsync(cancellationToken);
                applied?.Invoke(script);
            }

            if (claim is not null)
            {
                await claim(connection, cancellationToken);
            }
        }
        finally
        {
            if (connection.State == System.Data.ConnectionState.Open)
            {
                await ExecuteAsync(connection, $"select pg_advisory_unlock({MigrationLockKey})", CancellationToken.None);
            }
        }
    }

    // Stamps the database with its shard on first use; refuses a topology that later points it elsewhere.
    private static async Task ClaimReplicaAsync(NpgsqlConnection connection, int shard, int replicaIndex, CancellationToken cancellationToken)
    {
        await using var claim = new NpgsqlCommand("""
            with claimed as (
                insert into pr2_replica (shard, replica_id) values ($1, gen_random_uuid())
                on conflict do nothing
                returning shard
            )
            select shard from claimed union all select shard from pr2_replica
            """, connection);
        claim.Parameters.Add(new() { Value = shard });
        var owner = (int)(await claim.ExecuteScalarAsync(cancellationToken))!;
        if (owner != shard)
        {
            throw new InvalidOperationException(
                $"Pr2:Topology:Shards:{shard}:Replicas:{replicaIndex}: database '{connection.Database}' is a replica of shard {owner}, not of shard {shard}");
        }
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}
