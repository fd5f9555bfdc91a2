using System.Runtime.InteropServices;
using System.Text.Json;

namespace PR2.Grains.Json;

/// <summary>
/// What valid JSON PostgreSQL's jsonb still refuses, found at the door so that such a body is the caller's
/// <see cref="ErrorCode.BadBody"/> rather than a failed group commit (which would fail the other appends of its
/// batch and be answered as retriable). jsonb refuses: the escape <c>\u0000</c> (its text type cannot hold NUL), a
/// surrogate escape that is not half of a pair, and a number outside its numeric type: more than 131,072 digits
/// before the decimal point or 16,383 after it, once the exponent is applied. Measured on PostgreSQL 15:
/// <c>9.9e131071</c> and <c>1e-16383</c> are stored, <c>1e131072</c>, <c>1.5e-16383</c> and <c>0e-16384</c> are not.
/// </summary>
public static class StorableJson
{
    /// <summary>Most digits before the decimal point a jsonb number may have.</summary>
    public const int MaxIntegerDigits = 131_072;

    /// <summary>Most digits after the decimal point a jsonb number may have.</summary>
    public const int MaxFractionDigits = 16_383;

    /// <summary>Why <paramref name="root"/> cannot be stored as jsonb (naming where, as a JSON path), or null.</summary>
    public static string? Problem(JsonElement root) => Problem(root, "$");

    private static string? Problem(JsonElement element, string path)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var member in element.EnumerateObject())
                {
                    // The name is checked before it is decoded: a lone surrogate cannot be decoded.
                    if (StringProblem(JsonMarshal.GetRawUtf8PropertyName(member)) is { } name)
                    {
                        return $"a member name in {path} {name}";
                    }

                    if (Problem(member.Value, $"{path}.{member.Name}") is { } inner)
                    {
                        return inner;
                    }
                }

                return null;
            case JsonValueKind.Array:
                var index = 0;
                foreach (var item in element.EnumerateArray())
                {
                    if (Problem(item, $"{path}[{index++}]") is { } inner)
                    {
                        return inner;
                    }
                }

                return null;
            case JsonValueKind.String:
                return StringProblem(JsonMarshal.GetRawUtf8Value(element)) is { } text ? $"string at {path} {text}" : null;
            case JsonValueKind.Number:
                return NumberProblem(JsonMarshal.GetRawUtf8Value(element)) is { } number ? $"number at {path} {number}" : null;
            default:
                return null;
        }
    }

    // Raw (still escaped) UTF-8 of a string or member name. Only escapes can make what jsonb refuses: the parser
    // has already refused raw control characters and invalid UTF-8.
    private static string? StringProblem(ReadOnlySpan<byte> raw)
    {
        var pendingHigh = false;
        for (var i = 0; i < raw.Length; i++)
        {
            if (raw[i] != (byte)'\\')
            {
                if (pendingHigh)
                {
                    return "has a high surrogate escape without its low half";
                }

                continue;
            }

            var escaped = raw[++i];
            if (escaped != (byte)'u')
            {
                if (pendingHigh)
                {
                    return "has a high surrogate escape without its low half";
                }

                continue;
            }

            var unit = Hex(raw.Slice(i + 1, 4));
            i += 4;
            if (unit == 0)
            {
                return "holds \\u0000, which PostgreSQL text cannot store";
            }

            var isHigh = unit is >= 0xD800 and <= 0xDBFF;
            var isLow = unit is >= 0xDC00 and <= 0xDFFF;
            if (pendingHigh != isLow)
            {
                return pendingHigh ? "has a high surrogate escape without its low half" : "has a low surrogate escape without its high half";
            }

            pendingHigh = isHigh;
        }

        return pendingHigh ? "has a high surrogate escape without its low half" : null;
    }

    private static int Hex(ReadOnlySpan<byte> digits)
    {
        var value = 0;
        foreach (var digit in digits)
        {
            value = (value << 4) | (digit switch
            {
                >= (byte)'0' and <= (byte)'9' => digit - '0',
                >= (byte)'a' and <= (byte)'f' => digit - 'a' + 10,
                _ => digit - 'A' + 10,
            });
        }

        return value;
    }

    // A JSON number the parser accepted: -?int(.frac)?([eE][+-]?exp)?
    private static string? NumberProblem(ReadOnlySpan<byte> raw)
    {
        var i = raw[0] == (byte)'-' ? 1 : 0;
        var integerStart = i;
        while (i < raw.Length && char.IsAsciiDigit((char)raw[i]))
        {
            i++;
        }

        var integer = raw[integerStart..i];
        var fraction = ReadOnlySpan<byte>.Empty;
        if (i < raw.Length && raw[i] == (byte)'.')
        {
            var fractionStart = ++i;
            while (i < raw.Length && char.IsAsciiDigit((char)raw[i]))
            {
                i++;
            }

            fraction = raw[fractionStart..i];
        }

        // Past a billion the exponent is out of range whatever the digits (at most the body's size); saturating
        // keeps the arithmetic below in range.
        long exponent = 0;
        if (i < raw.Length)
        {
            var negative = raw[++i] == (byte)'-';
            if (raw[i] is (byte)'-' or (byte)'+')
            {
                i++;
            }

            for (; i < raw.Length; i++)
            {
                exponent = Math.Min(exponent * 10 + (raw[i] - '0'), 1_000_000_000);
            }

            exponent = negative ? -exponent : exponent;
        }

        // PostgreSQL refuses an exponent this large even on zero (0e1073741823); the cap above marks it.
        if (Math.Abs(exponent) >= 1_000_000_000)
        {
            return "has an exponent beyond a billion, which PostgreSQL's numeric cannot read";
        }

        if (fraction.Length - exponent > MaxFractionDigits)
        {
            return $"needs more than {MaxFractionDigits} digits after the decimal point, which PostgreSQL's numeric cannot store";
        }

        // Digits before the decimal point of the value: from its first non-zero digit (none for zero).
        var firstNonZero = integer.IndexOfAnyExcept((byte)'0');
        var significant = firstNonZero >= 0 ? integer.Length - firstNonZero : -fraction.IndexOfAnyExcept((byte)'0');
        var isZero = firstNonZero < 0 && fraction.IndexOfAnyExcept((byte)'0') < 0;
        return !isZero && significant + exponent > MaxIntegerDigits
            ? $"needs more than {MaxIntegerDigits} digits before the decimal point, which PostgreSQL's numeric cannot store"
            : null;
    }
}
