using System.Text;

namespace PR2.Client.Cli;

/// <summary>A plain left-aligned text table for people reading a terminal.</summary>
public sealed class TextTable(params string[] headers)
{
    private readonly List<string[]> _rows = [];

    public TextTable Add(params object?[] cells)
    {
        _rows.Add([.. cells.Select(c => Convert.ToString(c, System.Globalization.CultureInfo.InvariantCulture) ?? "")]);
        return this;
    }

    public override string ToString()
    {
        var widths = headers.Select((h, i) => Math.Max(h.Length, _rows.Count == 0 ? 0 : _rows.Max(r => r[i].Length))).ToArray();
        var text = new StringBuilder();
        void Line(IReadOnlyList<string> cells) =>
            text.AppendLine(string.Join("  ", cells.Select((c, i) => i == cells.Count - 1 ? c : c.PadRight(widths[i]))).TrimEnd());
        Line(headers);
        foreach (var row in _rows)
        {
            Line(row);
        }

        return text.ToString();
    }
}
