using System.Collections.Concurrent;
using PR2.Grains.Json;

namespace PR2.Grains.Records;

/// <summary>
/// Merges that actors on this silo worked out for modifies they were about to append, kept for the records agent on
/// the same silo: it folds each of those entries into the same state a few milliseconds later, and finds the result
/// here instead of merging again (at 64 writers the merges were about a seventh of the silo's CPU, the agent's nearly
/// half of that). A merge is found by the identity of the body text (the agent takes the entry, body and all, from the
/// writer's memory) and used only when the state it was merged into holds the same value as the state the agent holds,
/// with members in any order: a merge depends on those two values alone, so what is found is what merging again would
/// give, up to member order, which the view does not keep (it stores jsonb). Each is used once; past
/// <see cref="Capacity"/> kept (merges nobody took: the entry failed, or an agent on another silo folded it) it starts
/// over.
/// </summary>
public sealed class RecentMerges
{
    /// <summary>Merges kept at most before the store starts over.</summary>
    public const int Capacity = 8192;

    // Keyed by the body (patch) string instance: the agent's entry carries the very string the actor merged.
    private readonly ConcurrentDictionary<string, (string Target, string Result)> _merges = new(ReferenceEqualityComparer.Instance);
    private int _count;
    private long _taken;

    /// <summary>How many merges the agents found here rather than worked out again.</summary>
    public long Taken => Interlocked.Read(ref _taken);

    /// <summary><paramref name="patch"/> merged into <paramref name="target"/>, kept for the agent that folds the same entry.</summary>
    public string MergeAhead(string target, string patch)
    {
        var result = JsonMergePatch.Apply(target, patch);
        if (Interlocked.Increment(ref _count) > Capacity)
        {
            _merges.Clear();
            Volatile.Write(ref _count, 1);
        }

        _merges[patch] = (target, result);
        return result;
    }

    /// <summary><paramref name="patch"/> merged into <paramref name="target"/>: the result kept for exactly this merge, or worked out now.</summary>
    public string Merge(string target, string patch)
    {
        if (_merges.TryRemove(patch, out var kept))
        {
            Interlocked.Decrement(ref _count);
            // The same text, or (once per actor: then the agent holds the actor's text) the same value in another
            // member order, since an actor that read its journal holds states in jsonb's order.
            if (string.Equals(kept.Target, target, StringComparison.Ordinal) || CanonicalJson.SameValue(kept.Target, target))
            {
                Interlocked.Increment(ref _taken);
                return kept.Result;
            }
        }

        return JsonMergePatch.Apply(target, patch);
    }
}
