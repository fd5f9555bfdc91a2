namespace PR2.Tests.Streams;

/// <summary>What a watcher kept: the entries in the order it kept them, its last token, and how many it dropped as already kept.</summary>
[GenerateSerializer]
public sealed class WatcherState
{
    [Id(0)]
    public int Shard { get; set; } = -1;

    [Id(1)]
    public List<Guid> Kept { get; set; } = [];

    [Id(2)]
    public string? Token { get; set; }

    [Id(3)]
    public int Dropped { get; set; }

    [Id(4)]
    public int Activations { get; set; }
}
