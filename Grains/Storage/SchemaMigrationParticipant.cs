namespace PR2.Grains.Storage;

/// <summary>
/// Runs <see cref="SchemaMigrator"/> at the very first stage of silo start-up: before membership reads
/// its queries from the control shard and before any grain touches a journal.
/// </summary>
public sealed class SchemaMigrationParticipant(SchemaMigrator migrator) : ILifecycleParticipant<ISiloLifecycle>
{
    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(SchemaMigrationParticipant), ServiceLifecycleStage.First, migrator.MigrateAllAsync, _ =>
        {
            migrator.Stop();
            return Task.CompletedTask;
        });
}
