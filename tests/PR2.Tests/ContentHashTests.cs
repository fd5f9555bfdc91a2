using System.Security.Cryptography;
using System.Text;
using PR2.Grains.Json;

namespace PR2.Tests;

/// <summary>
/// The content hash stored with every journal entry: a retry is matched against it, so its definition may never
/// drift. It is the first 16 bytes of SHA-256 over "shard\nactor\nkind\nbody" in UTF-8.
/// </summary>
public sealed class ContentHashTests
{
    [Theory]
    [InlineData(0, "rule/x", MessageKind.Insert, "{}")]
    [InlineData(1, "order/42", MessageKind.Modify, """{"total":12.50,"note":"\u00E9 caf\u00E9"}""")]
    [InlineData(2147483647, "order/k", MessageKind.Cancel, """{"reason":"customer"}""")]
    public void The_hash_is_sha256_of_the_joined_text(int shard, string actorId, MessageKind kind, string body)
    {
        var joined = Encoding.UTF8.GetBytes($"{shard}\n{actorId}\n{(short)kind}\n{body}");
        Assert.Equal(SHA256.HashData(joined)[..16], MessageBody.ContentHash(new ActorRef(shard, actorId), kind, body));
    }
}
