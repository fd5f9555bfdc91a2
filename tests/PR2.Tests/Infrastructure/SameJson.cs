using System.Text.Json.Nodes;

namespace PR2.Tests.Infrastructure;

/// <summary>Compares JSON texts by content: member order and whitespace aside (PostgreSQL's jsonb keeps its own order).</summary>
public static class SameJson
{
    public static bool As(string? expected, string? actual) =>
        JsonNode.DeepEquals(expected is null ? null : JsonNode.Parse(expected), actual is null ? null : JsonNode.Parse(actual));
}
