namespace PR2.Tests.Storage;

/// <summary>A grain that keeps one note in the "pr2" grain storage; two classes implement it with the same state name.</summary>
public interface INoteGrain : IGrainWithIntegerKey
{
    Task Write(string note);

    Task<string?> Read();
}
