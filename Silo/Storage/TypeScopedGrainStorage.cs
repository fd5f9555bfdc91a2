using Orleans.Storage;

namespace PR2.Silo.Storage;

/// <summary>
/// Grain storage that keys state by grain type as well as by state name. The ADO.NET provider keys a row by the state
/// name and the grain's key only, so two grain types with the same key and the same state name ("state" by default)
/// would read and overwrite each other's state; this wrapper hands it "grain type/state name" instead.
/// </summary>
public sealed class TypeScopedGrainStorage(IGrainStorage inner) : IGrainStorage
{
    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
        inner.ReadStateAsync(Scoped(stateName, grainId), grainId, grainState);

    public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
        inner.WriteStateAsync(Scoped(stateName, grainId), grainId, grainState);

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
        inner.ClearStateAsync(Scoped(stateName, grainId), grainId, grainState);

    private static string Scoped(string stateName, GrainId grainId) => $"{grainId.Type}/{stateName}";
}
