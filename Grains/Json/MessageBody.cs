using System.Buffers;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace PR2.Grains.Json;

/// <summary>
/// A message body checked and put in canonical form (<see cref="CanonicalJson"/>), with the hash that identifies
/// the message's content for idempotency.
/// </summary>
public sealed record MessageBody(string Canonical)
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

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

        int size;
        try
        {
            size = StrictUtf8.GetByteCount(body);
        }
        catch (EncoderFallbackException)
        {
            // A lone surrogate in the text itself: lenient encoding would store U+FFFD in its place, silently.
            throw new Pr2Exception(ErrorCode.BadBody, "body is not valid Unicode text (it holds half of a surrogate pair)");
        }

        if (size > maxBytes)
        {
            throw new Pr2Exception(ErrorCode.BodyTooLarge, $"body is {size} bytes; the limit is {maxBytes} bytes");
        }

        PooledJsonDocument document;
        try
        {
            document = new PooledJsonDocument(body, CanonicalJson.ParseOptions);
        }
        catch (JsonException e)
        {
            throw new Pr2Exception(ErrorCode.BadBody, $"body is not valid JSON: {e.Message}");
        }
        catch (InvalidOperationException)
        {
            // Comparing member names (for repeats) decodes them, and a lone surrogate escape cannot be decoded.
            throw new Pr2Exception(ErrorCode.BadBody, "body cannot be stored: a member name has a surrogate escape without its other half");
        }

        using (document)
        {
            if (document.Root.ValueKind != JsonValueKind.Object)
            {
                throw new Pr2Exception(ErrorCode.BadBody, $"body must be a JSON object, got {document.Root.ValueKind.ToString().ToLowerInvariant()}");
            }

            if (StorableJson.Problem(document.Root) is { } problem)
            {
                throw new Pr2Exception(ErrorCode.BadBody, $"body cannot be stored: the {problem}");
            }

            return new MessageBody(CanonicalJson.Of(document.Root));
        }
    }

    /// <summary>16 bytes of SHA-256 over receiver, kind and canonical body: equal hashes mean the same message content.</summary>
    public static byte[] ContentHash(ActorRef receiver, MessageKind kind, string canonicalBody)
    {
        // The UTF-8 of "shard\nactor\nkind\nbody", written piece by piece into one pooled buffer (no joined string).
        var utf8 = ArrayPool<byte>.Shared.Rent(32 + Encoding.UTF8.GetMaxByteCount(receiver.ActorId.Length + canonicalBody.Length));
        try
        {
            var length = 0;
            receiver.Shard.TryFormat(utf8.AsSpan(length), out var written, provider: CultureInfo.InvariantCulture);
            length += written;
            utf8[length++] = (byte)'\n';
            length += Encoding.UTF8.GetBytes(receiver.ActorId, utf8.AsSpan(length));
            utf8[length++] = (byte)'\n';
            ((short)kind).TryFormat(utf8.AsSpan(length), out written, provider: CultureInfo.InvariantCulture);
            length += written;
            utf8[length++] = (byte)'\n';
            length += Encoding.UTF8.GetBytes(canonicalBody, utf8.AsSpan(length));

            Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
            SHA256.HashData(utf8.AsSpan(0, length), digest);
            return digest[..16].ToArray();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(utf8);
        }
    }
}
