using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace PR2.Grains.Json;

/// <summary>
/// A message body checked and put in canonical form (parsed and re-serialized without whitespace),
/// with the hash that identifies the message's content for idempotency.
/// </summary>
public sealed record MessageBody(JsonObject Value, string Canonical)
{
    /// <summary>Checks size and shape; throws <see cref="Pr2Exception"/> naming the problem.</summary>
    public static MessageBody Parse(MessageKind kind, string? body, int maxBytes)
    {
        if (kind == MessageKind.Cancel && string.IsNullOrWhiteSpace(body))
        {
            body = "{}";
        }

        if (string.IsNullOrWhiteSpace(body))
        {
            throw new Pr2Exception(ErrorCode.BadBody, $"{kind.ToString().ToLowerInvariant()} needs a body: a JSON object");
        }

        var size = Encoding.UTF8.GetByteCount(body);
        if (size > maxBytes)
        {
            throw new Pr2Exception(ErrorCode.BodyTooLarge, $"body is {size} bytes; the limit is {maxBytes} bytes");
        }

        JsonNode? node;
        try
        {
            node = JsonNode.Parse(body);
        }
        catch (JsonException e)
        {
            throw new Pr2Exception(ErrorCode.BadBody, $"body is not valid JSON: {e.Message}");
        }

        if (node is not JsonObject value)
        {
            var found = node?.GetValueKind().ToString().ToLowerInvariant() ?? "null";
            throw new Pr2Exception(ErrorCode.BadBody, $"body must be a JSON object, got {found}");
        }

        return new MessageBody(value, value.ToJsonString());
    }

    /// <summary>16 bytes of SHA-256 over receiver, kind and canonical body: equal hashes mean the same message content.</summary>
    public static byte[] ContentHash(ActorRef receiver, MessageKind kind, string canonicalBody)
    {
        var text = $"{receiver.Shard}\n{receiver.ActorId}\n{(short)kind}\n{canonicalBody}";
        return SHA256.HashData(Encoding.UTF8.GetBytes(text))[..16];
    }
}
