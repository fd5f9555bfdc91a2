using PR2.Silo;

namespace PR2.Tests.Storage;

/// <summary>Keeps its note under the state name "state", like SecondNoteGrain.</summary>
public sealed class FirstNoteGrain([PersistentState("state", SiloHostingExtensions.GrainStorageName)] IPersistentState<Note> note) : Grain, INoteGrain
{
    public async Task Write(string text)
    {
        note.State.Text = text;
        await note.WriteStateAsync();
    }

    public Task<string?> Read() => Task.FromResult(note.State.Text);
}
