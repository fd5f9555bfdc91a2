using System.Reflection;
using Orleans.Serialization;

namespace PR2.Silo;

/// <summary>
/// Adds the grains of the assemblies named by <c>Pr2:Silo:GrainAssemblies</c> (application grains compiled apart from
/// the stock silo, e.g. journal stream subscribers) to this silo, with their serializers.
/// </summary>
public static class GrainAssemblies
{
    public static void Register(ISiloBuilder silo, SiloOptions options)
    {
        for (var i = 0; i < options.GrainAssemblies.Count; i++)
        {
            var path = Path.GetFullPath(options.GrainAssemblies[i]);
            if (!File.Exists(path))
            {
                throw new InvalidOperationException($"{SiloOptions.SectionName}:{nameof(SiloOptions.GrainAssemblies)}:{i}: no assembly at '{path}'");
            }

            var assembly = Assembly.LoadFrom(path);
            silo.Services.AddSerializer(serializer => serializer.AddAssembly(assembly));
        }
    }
}
