namespace PR2.Tests.Storage;

[GenerateSerializer]
public sealed class Note
{
    [Id(0)]
    public string? Text { get; set; }
}
