using Npgsql;
using PR2.Grains.Storage;

namespace PR2.Tests.Failures;

/// <summary>Runs database calls through the silo's own data sources and catches nothing (see <see cref="IDatabaseProbeGrain"/>).</summary>
public sealed class DatabaseProbeGrain(ShardRegistry shards) : Grain, IDatabaseProbeGrain
{
    public async Task<long> Scalar(string sql)
    {
        await using var command = shards.Get((int)this.GetPrimaryKeyLong()).Replicas[0].CreateCommand(sql);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    public async Task Connect(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
    }
}
