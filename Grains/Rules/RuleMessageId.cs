using System.Security.Cryptography;
using System.Text;

namespace PR2.Grains.Rules;

/// <summary>
/// The MessageId of a message a rule sends: derived from the rule's generation (its mark name), the source entry's
/// MessageId and the effect. The source MessageId is the same on every replica (positions are not), so the rule
/// running again on the same entry (a crash, a replay, a retried parked entry, or its run on another replica) sends the
/// same id, and the receiving actor answers with its first acknowledgement.
/// </summary>
public static class RuleMessageId
{
    /// <param name="markName">The rule's <see cref="Agents.IJournalAgent.MarkName"/> (name and generation).</param>
    /// <param name="sourceMessageId">The MessageId of the entry the rule acted on.</param>
    /// <param name="effect">
    /// Which of the entry's effects: a data rule's action index; for a C# rule, whose effects may come in another order
    /// on a replay (a query's rows), what the message is (its target and kind, and which of several such).
    /// </param>
    public static Guid For(string markName, Guid sourceMessageId, string effect)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"pr2-rule/{markName}/{sourceMessageId:N}/{effect}"));
        // An RFC 9562 version 8 (custom) UUID: the version and variant bits set, the rest from the hash.
        hash[6] = (byte)((hash[6] & 0x0F) | 0x80);
        hash[8] = (byte)((hash[8] & 0x3F) | 0x80);
        return new Guid(hash.AsSpan(0, 16), bigEndian: true);
    }
}
