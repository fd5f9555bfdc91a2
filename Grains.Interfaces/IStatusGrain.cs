namespace PR2;

/// <summary>Reads the cluster's status straight from the shard databases. Stateless: any silo answers (key 0).</summary>
public interface IStatusGrain : IGrainWithIntegerKey
{
    Task<ClusterStatus> GetStatus();
}
