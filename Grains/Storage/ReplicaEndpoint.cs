using Npgsql;

namespace PR2.Grains.Storage;

/// <summary>How a replica database is named where it is shown or recorded: <c>host:port/database</c>, never credentials.</summary>
public static class ReplicaEndpoint
{
    public static string Of(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        return $"{builder.Host}:{builder.Port}/{builder.Database}";
    }
}
