namespace PR2.Bench;

/// <summary>
/// Removes the throwaway server's data directory when the run ends (declared before the server, so it is disposed
/// after the server stopped). Each full run writes gigabytes of WAL and tables there; left behind, they fill the disk.
/// </summary>
internal sealed class ThrowawayDirectory(string path) : IDisposable
{
    public void Dispose()
    {
        if (Directory.Exists(path))
        {
            Directory.Delete(path, recursive: true);
        }
    }
}
