using Microsoft.Extensions.Logging;
using Npgsql;

namespace PR2.Grains.Storage;

/// <summary>
/// Brings every replica database of every configured shard to the current schema at start-up:
/// creates a missing database, applies the scripts it has not seen (each in its own transaction),
/// and records which shard the database belongs to. Silos starting together take turns through a
/// session advisory lock, so a script is never applied twice.
/// </summary>
public sealed class SchemaMigrator(ShardRegistry shards, ILogger<SchemaMigrator> logger)
{
    // "PR2S" as an integer: the advisory lock key that serializes migrations on one database.
    private const long MigrationLockKey = 0x50523253;

    private readonly IReadOnlyList<SchemaScript> _scripts = SchemaScript.LoadEmbedded();

    public async Task MigrateAllAsync(CancellationToken cancellationToken)
    {
        foreach (var code in shards.ShardCodes)
        {
            var set = shards.Get(code);
            for (var i = 0; i < set.Replicas.Count; i++)
            {
                await MigrateReplicaAsync(code, i, set.Replicas[i], cancellationToken);
            }
        }
    }

    private async Task MigrateReplicaAsync(int shard, int replicaIndex, NpgsqlDataSource source, CancellationToken cancellationToken)
    {
        await DatabaseCreator.EnsureExistsAsync(source.ConnectionString, cancellationToken);
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

            var applied = new HashSet<int>();
            await using (var read = new NpgsqlCommand("select version from pr2_schema_version", connection))
            await using (var reader = await read.ExecuteReaderAsync(cancellationToken))
            {
                while (await reader.ReadAsync(cancellationToken))
                {
                    applied.Add(reader.GetInt32(0));
                }
            }

            foreach (var script in _scripts.Where(s => !applied.Contains(s.Version) && (shard == 0 || !s.ControlShardOnly)))
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
                Log.SchemaScriptApplied(logger, script.Name, shard, replicaIndex);
            }

            await ClaimReplicaAsync(connection, shard, replicaIndex, cancellationToken);
        }
        finally
        {
            await ExecuteAsync(connection, $"select pg_advisory_unlock({MigrationLockKey})", CancellationToken.None);
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
