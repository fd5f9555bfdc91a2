using System.Buffers;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace PR2.Grains.Json;

/// <summary>
/// The one text form PR2 keeps JSON in (message bodies, record states): no whitespace, strings escaped the way
/// System.Text.Json escapes them by default, numbers as they were written. Work goes through
/// <see cref="JsonDocument"/> and <see cref="Utf8JsonWriter"/> on pooled or reused buffers, not through a node tree.
/// </summary>
public static class CanonicalJson
{
    /// <summary>Duplicate member names are refused where bodies come in: a fold could not say which one a record holds.</summary>
    public static readonly JsonDocumentOptions ParseOptions = new() { AllowDuplicateProperties = false };

    // Output buffers kept past this size are dropped after use, so one huge record does not pin memory per thread.
    private const int KeptBufferBytes = 64 * 1024;

    // One writer and buffer per thread, reused: writing never awaits, and a nested write takes a fresh pair.
    [ThreadStatic]
    private static (ArrayBufferWriter<byte> Buffer, Utf8JsonWriter Writer)? _cached;

    /// <summary><paramref name="json"/> (any valid JSON text) in canonical form.</summary>
    public static string Compact(string json)
    {
        using var document = new PooledJsonDocument(json);
        return Of(document.Root);
    }

    /// <summary>The canonical text of <paramref name="element"/>.</summary>
    public static string Of(JsonElement element) => Write(element, static (value, writer) => value.WriteTo(writer));

    /// <summary>
    /// Whether two JSON texts hold the same value with members in any order: what PostgreSQL's jsonb keeps of a state
    /// (it orders members its own way), so two states that differ only in member order are stored alike. Numbers must
    /// be written alike (1.0 and 1 are different jsonb texts).
    /// </summary>
    public static bool SameValue(string a, string b)
    {
        using var first = new PooledJsonDocument(a);
        using var second = new PooledJsonDocument(b);
        return SameValue(first.Root, second.Root);
    }

    private static bool SameValue(JsonElement a, JsonElement b)
    {
        if (a.ValueKind != b.ValueKind)
        {
            return false;
        }

        switch (a.ValueKind)
        {
            case JsonValueKind.Object:
                var members = 0;
                foreach (var member in a.EnumerateObject())
                {
                    members++;
                    if (!b.TryGetProperty(member.Name, out var other) || !SameValue(member.Value, other))
                    {
                        return false;
                    }
                }

                // No repeated names in PR2's texts, so equal counts mean the same names.
                return members == b.EnumerateObject().Count();
            case JsonValueKind.Array:
                if (a.GetArrayLength() != b.GetArrayLength())
                {
                    return false;
                }

                using (var items = b.EnumerateArray().GetEnumerator())
                {
                    return a.EnumerateArray().All(item => items.MoveNext() && SameValue(item, items.Current));
                }

            case JsonValueKind.String:
                return a.ValueEquals(b.GetString());
            case JsonValueKind.Number:
                return JsonMarshal.GetRawUtf8Value(a).SequenceEqual(JsonMarshal.GetRawUtf8Value(b));
            default:
                return true; // true, false, null: the kind is the value
        }
    }

    /// <summary>The canonical text of what <paramref name="write"/> writes.</summary>
    public static string Write<TState>(TState state, Action<TState, Utf8JsonWriter> write)
    {
        var (buffer, writer) = _cached ?? (new ArrayBufferWriter<byte>(512), new Utf8JsonWriter(Stream.Null));
        _cached = null;
        buffer.ResetWrittenCount();
        writer.Reset(buffer);
        write(state, writer);
        writer.Flush();
        var text = Encoding.UTF8.GetString(buffer.WrittenSpan);
        if (buffer.Capacity <= KeptBufferBytes)
        {
            _cached = (buffer, writer);
        }

        return text;
    }
}
