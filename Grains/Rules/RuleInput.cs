using System.Text.Json.Nodes;
using Npgsql;
using PR2.Grains.Records;

namespace PR2.Grains.Rules;

/// <summary>What a C# rule gets for one entry: the entry, its body, and read access to the source shard's records in the rule's transaction.</summary>
public sealed class RuleInput(JournalEntry entry, JsonObject body, NpgsqlConnection connection, NpgsqlTransaction transaction)
{
    public JournalEntry Entry => entry;

    public JsonObject Body => body;

    /// <summary>Live records of <paramref name="type"/> in the source shard whose state contains <paramref name="contains"/> (jsonb <c>@&gt;</c>), by actor id.</summary>
    public Task<IReadOnlyList<ActorRecord>> FindLiveRecordsAsync(string type, JsonObject contains, CancellationToken cancellationToken) =>
        RecordStore.FindLiveAsync(connection, transaction, entry.Actor.Shard, type, contains, cancellationToken);
}
