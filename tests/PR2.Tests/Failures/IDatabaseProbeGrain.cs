namespace PR2.Tests.Failures;

/// <summary>A grain that lets a database failure escape, as a grain with a missed catch would: to see what callers get.</summary>
public interface IDatabaseProbeGrain : IGrainWithIntegerKey
{
    /// <summary>Runs <paramref name="sql"/> on replica 0 of the shard this grain is keyed by, catching nothing.</summary>
    Task<long> Scalar(string sql);

    /// <summary>Opens a connection to a server that is not there (the connection string given), catching nothing.</summary>
    Task Connect(string connectionString);
}
