using PR2.Silo;

namespace PR2.Tests.Storage;

/// <summary>Keeps its note under the state name "state", like FirstNoteGrain.</summary>
public sealed class SecondNoteGrain([PersistentState("state", SiloHostingExtensions.GrainStorageName)] IPersistentState<Note> note) : Grain, INoteGrain
{
    public async Task Write(string text)
    {
        note.State.Text = text;
        await note.WriteStateAsync();
    }

    public Task<string?> Read() => Task.FromResult(note.State.Text);
}
