namespace PR2.Silo.Embedded;

/// <summary>
/// Where <c>initdb</c> and <c>pg_ctl</c> are: an explicit directory, else PATH, else Debian's
/// <c>/usr/lib/postgresql/&lt;version&gt;/bin</c> (newest first).
/// </summary>
public sealed record PostgresBinaries(string InitDb, string PgCtl)
{
    /// <summary>
    /// <c>pg_basebackup</c> (what starts a standby), installed beside <c>pg_ctl</c>: beside the file a <c>pg_ctl</c>
    /// link points to when only that one was linked onto PATH.
    /// </summary>
    public string PgBaseBackup
    {
        get
        {
            var real = new FileInfo(PgCtl).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? PgCtl;
            return new[] { PgCtl, real }.Select(ctl => Path.Combine(Path.GetDirectoryName(ctl)!, "pg_basebackup")).FirstOrDefault(File.Exists)
                ?? throw new InvalidOperationException($"pg_basebackup was not found beside {PgCtl} (nor beside {real})");
        }
    }

    public static PostgresBinaries Locate(string? binDirectory = null)
    {
        var candidates = new List<string>();
        if (!string.IsNullOrWhiteSpace(binDirectory))
        {
            candidates.Add(binDirectory);
        }
        else
        {
            candidates.AddRange((Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries));
            if (Directory.Exists("/usr/lib/postgresql"))
            {
                candidates.AddRange(Directory.GetDirectories("/usr/lib/postgresql")
                    .OrderByDescending(dir => int.TryParse(Path.GetFileName(dir), out var version) ? version : 0)
                    .Select(dir => Path.Combine(dir, "bin")));
            }
        }

        foreach (var dir in candidates)
        {
            var initDb = Path.Combine(dir, "initdb");
            var pgCtl = Path.Combine(dir, "pg_ctl");
            if (File.Exists(initDb) && File.Exists(pgCtl))
            {
                return new PostgresBinaries(initDb, pgCtl);
            }
        }

        if (!string.IsNullOrWhiteSpace(binDirectory))
        {
            throw new InvalidOperationException(
                $"PostgreSQL server binaries (initdb, pg_ctl) were not found in '{binDirectory}' (Pr2:Embedded:PostgresBin). " +
                "Point it at the directory that holds them, or remove it to search PATH and /usr/lib/postgresql/*/bin.");
        }

        throw new InvalidOperationException(
            "PostgreSQL server binaries (initdb, pg_ctl) were not found on PATH or in /usr/lib/postgresql/*/bin. " +
            "Install them (Debian/Ubuntu: apt-get install -y postgresql), set Pr2:Embedded:PostgresBin to their directory, " +
            "or configure Pr2:Topology with your own PostgreSQL servers.");
    }
}
