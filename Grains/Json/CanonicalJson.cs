using System.Buffers;
using System.Text;
using System.Text.Json;

namespace PR2.Grains.Json;

/// <summary>
/// The one text form PR2 keeps JSON in (message bodies, record states): no whitespace, strings escaped the way
/// System.Text.Json escapes them by default, numbers as they were written. Work goes through
/// <see cref="JsonDocument"/> (pooled buffers) and <see cref="Utf8JsonWriter"/>, not through a node tree.
/// </summary>
public static class CanonicalJson
{
    /// <summary>Duplicate member names are refused: a later fold could not say which one a record holds.</summary>
    public static readonly JsonDocumentOptions ParseOptions = new() { AllowDuplicateProperties = false };

    /// <summary><paramref name="json"/> (any valid JSON text) in canonical form.</summary>
    public static string Compact(string json)
    {
        using var document = JsonDocument.Parse(json, ParseOptions);
        return Of(document.RootElement);
    }

    /// <summary>The canonical text of <paramref name="element"/>.</summary>
    public static string Of(JsonElement element) => Write(element, static (value, writer) => value.WriteTo(writer));

    /// <summary>The canonical text of what <paramref name="write"/> writes.</summary>
    public static string Write<TState>(TState state, Action<TState, Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            write(state, writer);
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
