using System.Text.Json.Nodes;

namespace PR2.Silo.Http;

/// <summary>A document of a view kept by rules, as JSON: its key, the document itself, the rule and the journal position that last wrote it.</summary>
public sealed record ViewDocumentView(string Key, JsonNode? Doc, string Rule, long Position)
{
    public static ViewDocumentView From(ViewDocument document) => new(document.Key, JsonNode.Parse(document.Doc), document.Rule, document.Position);
}
