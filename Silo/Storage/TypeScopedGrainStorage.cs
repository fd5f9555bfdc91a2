using Orleans.Storage;

namespace PR2.Silo.Storage;

/// <summary>
/// Grain storage that keys state by grain type as well as by state name. The ADO.NET provider keys a row by the state
/// name and the grain's key only, so two grain types with the same key and the same state name ("state" by default)
/// would read and overwrite each other's state; this wrapper hands it "grain type/state name" instead. The provider
/// starts on first use (<see cref="DeferredStorageStart"/>).
/// </summary>
public sealed class TypeScopedGrainStorage(DeferredStorageStart inner) : IGrainStorage
{
    public async Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        await inner.EnsureStartedAsync();
        await inner.Storage.ReadStateAsync(Scoped(stateName, grainId), grainId, grainState);
    }

    public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        await inner.EnsureStartedAsync();
        await inner.Storage.WriteStateAsync(Scoped(stateName, grainId), grainId, grainState);
    }

    public async Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        await inner.EnsureStartedAsync();
        await inner.Storage.ClearStateAsync(Scoped(stateName, grainId), grainId, grainState);
    }

    // The provider rewrites a name holding a backtick as a generic type name (and drops what follows): keep none.
    private static string Scoped(string stateName, GrainId grainId) => $"{grainId.Type.ToString()!.Replace('`', '~')}/{stateName}";
}
