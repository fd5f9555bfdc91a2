using System.Diagnostics;
using System.Globalization;

namespace PR2.Client.Cli;

/// <summary>
/// Shows a long operation's progress on stderr: on a terminal a bar redrawn in place (at most ten times a second), else
/// (a log, a pipe) one line every few seconds. What is measured (rows or bytes) is the caller's; the bar adds the rate
/// and the time left at that rate.
/// </summary>
public sealed class ProgressBar(TextWriter error, string what, bool interactive, Func<TransferProgress, (long Done, long Total, string Unit)> measure)
    : IProgress<TransferProgress>
{
    private const int Width = 24;

    private static readonly TimeSpan InteractiveEvery = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan LogEvery = TimeSpan.FromSeconds(5);

    private readonly Stopwatch _since = Stopwatch.StartNew();
    private TimeSpan? _shown;
    private TransferProgress? _last;
    private bool _drawn;

    /// <summary>A bar on <see cref="Console.Error"/> when it is a terminal; otherwise lines on <paramref name="error"/>.</summary>
    public static ProgressBar For(TextWriter error, string what, Func<TransferProgress, (long Done, long Total, string Unit)> measure) =>
        new(error, what, ReferenceEquals(error, Console.Error) && !Console.IsErrorRedirected, measure);

    public void Report(TransferProgress value)
    {
        _last = value;
        if (_shown is not { } shown || _since.Elapsed - shown >= (interactive ? InteractiveEvery : LogEvery))
        {
            Show(value);
        }
    }

    /// <summary>Shows the last figures once more and ends the bar's line.</summary>
    public void Done()
    {
        if (_last is { } last)
        {
            Show(last);
        }

        if (interactive && _drawn)
        {
            error.WriteLine();
        }
    }

    private void Show(TransferProgress progress)
    {
        _shown = _since.Elapsed;
        _drawn = true;
        var line = Render(progress);
        if (interactive)
        {
            error.Write("\r" + line.PadRight(Math.Max(line.Length, Console.IsErrorRedirected ? 0 : Console.WindowWidth - 1)));
        }
        else
        {
            error.WriteLine(line);
        }
    }

    /// <summary>One line: bar, percentage, table, done of total, bytes, rate, time left.</summary>
    public string Render(TransferProgress progress)
    {
        var (done, total, unit) = measure(progress);
        var fraction = total > 0 ? Math.Clamp((double)done / total, 0, 1) : 0;
        var filled = (int)Math.Round(fraction * Width);
        var seconds = Math.Max(progress.Elapsed.TotalSeconds, 0.001);
        var rate = done / seconds;
        var left = rate > 0 && total > done ? TimeSpan.FromSeconds((total - done) / rate) : TimeSpan.Zero;
        return string.Create(CultureInfo.InvariantCulture,
            $"{what} [{new string('#', filled)}{new string('-', Width - filled)}] {fraction * 100,3:0}%  {progress.Table}  {done:N0}/{total:N0} {unit}  " +
            $"{(progress.Bytes > 0 ? $"{progress.Bytes / 1048576.0:0.0} MiB  " : "")}{rate:N0} {unit}/s  {(total > done ? $"{left:m\\:ss} left" : "done")}");
    }
}
