using System.Buffers;
using System.Text;
using System.Text.Json;

namespace PR2.Grains.Json;

/// <summary>
/// A <see cref="JsonDocument"/> over JSON text, its UTF-8 in a pooled buffer: parsing a string directly would
/// allocate a fresh UTF-8 copy each time, and this runs for every message and every fold.
/// </summary>
internal sealed class PooledJsonDocument : IDisposable
{
    private readonly byte[] _utf8;
    private readonly JsonDocument _document;

    public PooledJsonDocument(string json, JsonDocumentOptions options = default)
    {
        _utf8 = ArrayPool<byte>.Shared.Rent(Encoding.UTF8.GetMaxByteCount(json.Length));
        try
        {
            var length = Encoding.UTF8.GetBytes(json, _utf8);
            _document = JsonDocument.Parse(_utf8.AsMemory(0, length), options);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(_utf8);
            throw;
        }
    }

    public JsonElement Root => _document.RootElement;

    public void Dispose()
    {
        _document.Dispose();
        ArrayPool<byte>.Shared.Return(_utf8);
    }
}
