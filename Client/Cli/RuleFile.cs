using System.Text.Json;
using YamlDotNet.Core;
using YamlDotNet.Serialization;

namespace PR2.Client.Cli;

/// <summary>Reads a rule definition file: JSON as it is, YAML (.yaml, .yml) turned into the same JSON.</summary>
public static class RuleFile
{
    public static async Task<string> ReadAsJsonAsync(string path, CancellationToken cancellationToken)
    {
        var text = path == "-" ? await Console.In.ReadToEndAsync(cancellationToken) : await File.ReadAllTextAsync(path, cancellationToken);
        var isYaml = path.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".yml", StringComparison.OrdinalIgnoreCase);
        return isYaml ? YamlToJson(text, path) : text;
    }

    public static string YamlToJson(string yaml, string path)
    {
        try
        {
            // Unquoted scalars become numbers and booleans where they look like them, as in JSON.
            var value = new DeserializerBuilder().WithAttemptingUnquotedStringTypeDeserialization().Build().Deserialize<object>(yaml);
            return JsonSerializer.Serialize(value);
        }
        catch (YamlException e)
        {
            throw new Pr2Exception(ErrorCode.BadRule, $"{path}: not valid YAML at line {e.Start.Line}, column {e.Start.Column}: {e.Message}");
        }
    }
}
