using Npgsql;

namespace PR2.Grains.Storage;

/// <summary>
/// A replica database that answers but is not set up yet (its schema is still being applied, e.g. a server that came
/// back after the silo started). An <see cref="NpgsqlException"/> and transient, so every caller treats the replica
/// as it treats one that is down: it tries again later.
/// </summary>
public sealed class ReplicaNotReadyException(string message) : NpgsqlException(message)
{
    public override bool IsTransient => true;
}
