using System.Buffers.Text;

namespace PR2;

/// <summary>
/// The text form shared by <see cref="JournalStreamToken"/> and <see cref="WatchPosition"/>: (id, number) pairs of 24
/// bytes each (16 for the Guid, 8 for the number), base64url. The first pair says where; the rest are a vector.
/// </summary>
internal static class OriginPairsText
{
    private const int PairBytes = 24;

    public static string Encode(Guid id, long number, IReadOnlyList<KeyValuePair<Guid, long>> vector)
    {
        var bytes = new byte[PairBytes * (1 + vector.Count)];
        Write(bytes, 0, id, number);
        for (var i = 0; i < vector.Count; i++)
        {
            Write(bytes, PairBytes * (1 + i), vector[i].Key, vector[i].Value);
        }

        return Base64Url.EncodeToString(bytes);
    }

    /// <summary>The pairs of <paramref name="text"/>, or null when it is not this form.</summary>
    public static List<KeyValuePair<Guid, long>>? Decode(string text)
    {
        byte[] bytes;
        try
        {
            bytes = Base64Url.DecodeFromChars(text);
        }
        catch (FormatException)
        {
            return null;
        }

        if (bytes.Length == 0 || bytes.Length % PairBytes != 0)
        {
            return null;
        }

        var pairs = new List<KeyValuePair<Guid, long>>(bytes.Length / PairBytes);
        for (var offset = 0; offset < bytes.Length; offset += PairBytes)
        {
            pairs.Add(new(new Guid(bytes.AsSpan(offset, 16)), BitConverter.ToInt64(bytes, offset + 16)));
        }

        return pairs;
    }

    private static void Write(byte[] bytes, int offset, Guid id, long number)
    {
        id.TryWriteBytes(bytes.AsSpan(offset, 16));
        BitConverter.TryWriteBytes(bytes.AsSpan(offset + 16, 8), number);
    }
}
