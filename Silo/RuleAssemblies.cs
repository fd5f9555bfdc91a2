using System.Reflection;
using Microsoft.Extensions.DependencyInjection;
using PR2.Grains.Rules;

namespace PR2.Silo;

/// <summary>
/// Registers the C# rules found in assemblies named by <c>Pr2:Silo:RuleAssemblies</c>, so the stock silo (and its
/// container image) runs rules compiled apart from it: every public, concrete <see cref="IRule"/> in each assembly,
/// or only those <c>Pr2:Silo:Rules</c> names.
/// </summary>
public static class RuleAssemblies
{
    public static void Register(IServiceCollection services, SiloOptions options)
    {
        var paths = options.RuleAssemblies;
        var wanted = options.Rules.ToHashSet(StringComparer.Ordinal);
        var found = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < paths.Count; i++)
        {
            var key = $"{SiloOptions.SectionName}:{nameof(SiloOptions.RuleAssemblies)}:{i}";
            var path = Path.GetFullPath(paths[i]);
            if (!File.Exists(path))
            {
                throw new InvalidOperationException($"{key}: no assembly at '{path}'");
            }

            var rules = RuleTypes(Assembly.LoadFrom(path));
            if (rules.Count == 0)
            {
                throw new InvalidOperationException($"{key}: '{path}' holds no public class implementing IRule");
            }

            foreach (var rule in rules.Where(r => wanted.Count == 0 || wanted.Contains(r.FullName!)))
            {
                services.AddSingleton(typeof(IRule), rule);
                found.Add(rule.FullName!);
            }
        }

        if (wanted.Except(found).ToList() is { Count: > 0 } missing)
        {
            throw new InvalidOperationException(
                $"{SiloOptions.SectionName}:{nameof(SiloOptions.Rules)}: no rule named {string.Join(", ", missing)} in {SiloOptions.SectionName}:{nameof(SiloOptions.RuleAssemblies)}");
        }
    }

    private static List<Type> RuleTypes(Assembly assembly)
    {
        Type?[] types;
        try
        {
            types = assembly.GetTypes();
        }
        catch (ReflectionTypeLoadException e)
        {
            // Types that need an assembly the silo does not have cannot be rules it runs; the rest can.
            types = e.Types;
        }

        return [.. types.OfType<Type>().Where(t => t is { IsPublic: true, IsAbstract: false, IsClass: true } && typeof(IRule).IsAssignableFrom(t))];
    }
}
