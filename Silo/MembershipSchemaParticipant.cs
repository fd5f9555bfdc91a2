using PR2.Grains.Storage;

namespace PR2.Silo;

/// <summary>Creates the membership tables in a membership database of its own before the silo reads them.</summary>
public sealed class MembershipSchemaParticipant(string connectionString, SchemaMigrator migrator) : ILifecycleParticipant<ISiloLifecycle>
{
    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(MembershipSchemaParticipant), ServiceLifecycleStage.First,
            cancellationToken => migrator.MigrateMembershipAsync(connectionString, cancellationToken));
}
