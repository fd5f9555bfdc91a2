using System.Buffers.Binary;

namespace PR2.Grains.Backup;

/// <summary>
/// Counts the rows of a PostgreSQL binary COPY stream fed in arbitrary pieces (a row may span pieces): the header, then
/// per row a 16-bit field count and per field a 32-bit length (-1 for null) and that many bytes, then -1 as the trailer.
/// Backups report progress in rows with it, and it checks that a stream ends where the format says it does.
/// </summary>
public sealed class CopyTupleCounter
{
    private const int SignatureLength = 11;

    private static readonly byte[] Signature = [(byte)'P', (byte)'G', (byte)'C', (byte)'O', (byte)'P', (byte)'Y', (byte)'\n', 0xff, (byte)'\r', (byte)'\n', 0];

    private enum Expect { Header, Extension, FieldCount, FieldLength, FieldBytes, Done }

    private readonly byte[] _pending = new byte[SignatureLength + 8];
    private int _pendingLength;
    private Expect _expect = Expect.Header;
    private long _skip;
    private int _fieldsLeft;

    /// <summary>Complete rows seen so far.</summary>
    public long Rows { get; private set; }

    /// <summary>True once the trailer was seen: the stream is whole.</summary>
    public bool Complete => _expect == Expect.Done;

    public void Feed(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            switch (_expect)
            {
                case Expect.Header:
                    if (!TakeFixed(ref data, SignatureLength + 8, out var header))
                    {
                        return;
                    }

                    if (!header[..SignatureLength].SequenceEqual(Signature))
                    {
                        throw new InvalidDataException("not a PostgreSQL binary COPY stream (bad signature)");
                    }

                    _skip = BinaryPrimitives.ReadInt32BigEndian(header[(SignatureLength + 4)..]);
                    _expect = Expect.Extension;
                    break;
                case Expect.Extension:
                    Skip(ref data);
                    if (_skip == 0)
                    {
                        _expect = Expect.FieldCount;
                    }

                    break;
                case Expect.FieldBytes:
                    Skip(ref data);
                    if (_skip == 0)
                    {
                        _expect = --_fieldsLeft == 0 ? CountRow() : Expect.FieldLength;
                    }

                    break;
                case Expect.FieldCount:
                    if (!TakeFixed(ref data, 2, out var count))
                    {
                        return;
                    }

                    _fieldsLeft = BinaryPrimitives.ReadInt16BigEndian(count);
                    _expect = _fieldsLeft switch
                    {
                        -1 => Expect.Done,
                        0 => CountRow(),
                        < 0 => throw new InvalidDataException($"bad field count {_fieldsLeft} after row {Rows}"),
                        _ => Expect.FieldLength,
                    };
                    break;
                case Expect.FieldLength:
                    if (!TakeFixed(ref data, 4, out var length))
                    {
                        return;
                    }

                    _skip = BinaryPrimitives.ReadInt32BigEndian(length);
                    if (_skip < -1)
                    {
                        throw new InvalidDataException($"bad field length {_skip} in row {Rows + 1}");
                    }

                    if (_skip <= 0)
                    {
                        _skip = 0;
                        _expect = --_fieldsLeft == 0 ? CountRow() : Expect.FieldLength;
                    }
                    else
                    {
                        _expect = Expect.FieldBytes;
                    }

                    break;
                case Expect.Done:
                    throw new InvalidDataException("data after the end of the COPY stream");
            }
        }
    }

    private void Skip(ref ReadOnlySpan<byte> data)
    {
        var skipped = (int)Math.Min(_skip, data.Length);
        data = data[skipped..];
        _skip -= skipped;
    }

    private Expect CountRow()
    {
        Rows++;
        return Expect.FieldCount;
    }

    // Gathers a fixed-size piece that may arrive split; false (all of data kept) until it is whole.
    private bool TakeFixed(ref ReadOnlySpan<byte> data, int size, out ReadOnlySpan<byte> piece)
    {
        if (_pendingLength == 0 && data.Length >= size)
        {
            piece = data[..size];
            data = data[size..];
            return true;
        }

        var take = Math.Min(size - _pendingLength, data.Length);
        data[..take].CopyTo(_pending.AsSpan(_pendingLength));
        _pendingLength += take;
        data = data[take..];
        if (_pendingLength < size)
        {
            piece = default;
            return false;
        }

        piece = _pending.AsSpan(0, size);
        _pendingLength = 0;
        return true;
    }
}
