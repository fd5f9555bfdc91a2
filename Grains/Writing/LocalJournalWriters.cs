using System.Collections.Concurrent;

namespace PR2.Grains.Writing;

/// <summary>
/// The journal writers open in this silo, by shard. An actor on the same silo as its shard's writer grain
/// appends straight to the writer instead of through a grain call: the same queue, the same group commit,
/// without a second Orleans message per append. The writer grain stays the authority: it publishes a writer
/// once opened and withdraws it when it abandons, closes or loses it, and every append whose writer stalls or
/// stops goes through the grain, which probes and fails over. A writer published here that another silo
/// has since fenced refuses at its next commit (epoch check), so a stale entry cannot write.
/// </summary>
public sealed class LocalJournalWriters
{
    private readonly ConcurrentDictionary<int, JournalWriter> _writers = new();

    public void Publish(JournalWriter writer) => _writers[writer.Shard] = writer;

    /// <summary>Removes <paramref name="writer"/> if it is still the one published for its shard.</summary>
    public void Withdraw(JournalWriter writer) => _writers.TryRemove(new KeyValuePair<int, JournalWriter>(writer.Shard, writer));

    /// <summary>The writer of <paramref name="shard"/> open in this silo and still taking appends, if any.</summary>
    public JournalWriter? Find(int shard) => _writers.TryGetValue(shard, out var writer) && writer.IsOpen ? writer : null;
}
