using Microsoft.Extensions.Logging;

namespace PR2.Grains.Agents;

/// <summary>When a silo becomes active it asks the directory to record the configured topology in shard 0.</summary>
public sealed class DirectorySync(IGrainFactory grains, ILogger<DirectorySync> logger) : ILifecycleParticipant<ISiloLifecycle>
{
    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(DirectorySync), ServiceLifecycleStage.Active, async _ =>
        {
            try
            {
                await grains.GetGrain<IDirectoryGrain>(0).Sync();
            }
            catch (Exception e)
            {
                // Not fatal: the next silo start (or an operator) syncs again; the shards work without it.
                Log.DirectorySyncFailed(logger, e);
            }
        });
}
