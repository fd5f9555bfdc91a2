using System.Diagnostics;
using System.Globalization;
using Npgsql;

namespace PR2.Bench;

/// <summary>
/// CPU seconds used by this process, the silo process and the PostgreSQL server (postmaster, its live
/// children, and the children it already reaped), read from /proc; the silo's resident memory; and the bytes of
/// write-ahead log the server has written (all databases: one path runs at a time).
/// </summary>
internal sealed class ResourceMeter(int? siloPid, int? postmasterPid, NpgsqlDataSource server)
{
    private static readonly double TicksPerSecond = 100.0; // USER_HZ on Linux

    public (double Client, double Silo, double Postgres) CpuSeconds() =>
        (Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds,
         siloPid is { } silo ? ProcessCpu(silo, includeReaped: false) : 0,
         postmasterPid is { } pm ? ProcessCpu(pm, includeReaped: true) + ChildrenOf(pm).Sum(c => ProcessCpu(c, includeReaped: false)) : 0);

    /// <summary>WAL bytes the server has written since it started (<c>pg_stat_wal</c>).</summary>
    public async Task<long> WalBytesAsync()
    {
        await using var command = server.CreateCommand("select wal_bytes::bigint from pg_stat_wal");
        return (long)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>Resident memory of the silo in MiB (0 when not measured).</summary>
    public double SiloMemoryMiB()
    {
        if (siloPid is not { } pid)
        {
            return 0;
        }

        var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return line is null ? 0 : double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024;
    }

    private static double ProcessCpu(int pid, bool includeReaped)
    {
        try
        {
            var fields = StatFields(pid);
            var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            if (includeReaped)
            {
                ticks += long.Parse(fields[13], CultureInfo.InvariantCulture) + long.Parse(fields[14], CultureInfo.InvariantCulture);
            }

            return ticks / TicksPerSecond;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    private static IEnumerable<int> ChildrenOf(int parent)
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), out var pid))
            {
                string[] fields;
                try
                {
                    fields = StatFields(pid);
                }
                catch (IOException)
                {
                    continue;
                }

                if (fields[1] == parent.ToString(CultureInfo.InvariantCulture))
                {
                    yield return pid;
                }
            }
        }
    }

    // Fields of /proc/pid/stat after the command name: [0] state, [1] ppid, ... [11] utime, [12] stime, [13] cutime, [14] cstime.
    private static string[] StatFields(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        return stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
    }
}
