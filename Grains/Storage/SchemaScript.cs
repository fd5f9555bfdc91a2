using System.Globalization;

namespace PR2.Grains.Storage;

/// <summary>
/// One numbered migration from <c>sql/</c>. Its first line says where it applies:
/// <c>-- pr2:applies-to all</c> (every replica of every shard), <c>-- pr2:applies-to control</c> (shard 0 only) or
/// <c>-- pr2:applies-to control, membership</c> (shard 0, and a membership database configured apart from it).
/// </summary>
public sealed record SchemaScript(int Version, string Name, bool ControlShardOnly, string Sql, bool Membership = false)
{
    private const string ResourcePrefix = "pr2.sql.";

    /// <summary>The scripts embedded in this assembly, in version order.</summary>
    public static IReadOnlyList<SchemaScript> LoadEmbedded()
    {
        var assembly = typeof(SchemaScript).Assembly;
        return [.. assembly.GetManifestResourceNames()
            .Where(name => name.StartsWith(ResourcePrefix, StringComparison.Ordinal))
            .Select(name =>
            {
                using var stream = assembly.GetManifestResourceStream(name)!;
                using var reader = new StreamReader(stream);
                return Parse(name[ResourcePrefix.Length..], reader.ReadToEnd());
            })
            .OrderBy(script => script.Version)];
    }

    public static SchemaScript Parse(string fileName, string sql)
    {
        var digits = new string([.. fileName.TakeWhile(char.IsAsciiDigit)]);
        if (digits.Length == 0)
        {
            throw new InvalidOperationException($"schema script '{fileName}' must start with its version number, e.g. 003_name.sql");
        }

        var firstLine = sql.TrimStart().Split('\n', 2)[0].Trim();
        var (controlOnly, membership) = firstLine switch
        {
            "-- pr2:applies-to control" => (true, false),
            "-- pr2:applies-to control, membership" => (true, true),
            "-- pr2:applies-to all" => (false, false),
            _ => throw new InvalidOperationException(
                $"schema script '{fileName}' must begin with '-- pr2:applies-to all', '-- pr2:applies-to control' or '-- pr2:applies-to control, membership'"),
        };
        return new SchemaScript(int.Parse(digits, CultureInfo.InvariantCulture), fileName, controlOnly, sql, membership);
    }
}
