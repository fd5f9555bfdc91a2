using System.Security.Cryptography;
using System.Text;

namespace PR2.Grains.Rules;

/// <summary>
/// The MessageId of a message a rule sends: derived from (rule, source shard, entry position, action index),
/// so that running the rule again on the same entry (a crash, a replay after fail-over, a retried parked
/// entry) sends the same id and the receiving actor answers with its first acknowledgement.
/// </summary>
public static class RuleMessageId
{
    public static Guid For(string rule, int shard, long position, int actionIndex) =>
        For(rule, shard, position, actionIndex.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>
    /// For C# rules, whose effects may come in a different order on a replay (a query's rows): named by what the
    /// message is (its target and kind, and which of several such), not by its place in the list.
    /// </summary>
    public static Guid For(string rule, int shard, long position, string effect)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"pr2-rule/{rule}/{shard}/{position}/{effect}"));
        // An RFC 9562 version 8 (custom) UUID: the version and variant bits set, the rest from the hash.
        hash[6] = (byte)((hash[6] & 0x0F) | 0x80);
        hash[8] = (byte)((hash[8] & 0x3F) | 0x80);
        return new Guid(hash.AsSpan(0, 16), bigEndian: true);
    }
}
