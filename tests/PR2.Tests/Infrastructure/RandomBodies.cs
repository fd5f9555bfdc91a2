using System.Text.Json.Nodes;
using CsCheck;

namespace PR2.Tests.Infrastructure;

/// <summary>
/// Message bodies for property tests: up to three members a, b, c, each a number, null (a merge patch removes
/// it) or a nested object, so that inserts, merges and removals all occur.
/// </summary>
public static class RandomBodies
{
    /// <summary>(actor 0..3, kind, body) triples.</summary>
    public static Gen<(int Actor, MessageKind Kind, string Body)> Ops { get; } = Gen.Select(
        Gen.Int[0, 3],
        Gen.Int[1, 3],
        Gen.Select(Gen.Int[0, 2], Gen.Int[-1, 6]).Array[0, 3],
        (actor, kind, members) => (actor, (MessageKind)kind, Body(members)));

    /// <summary>A body from (member, value) pairs: -1 is null, 6 a nested object, anything else that number.</summary>
    public static string Body((int Key, int Value)[] members)
    {
        var body = new JsonObject();
        foreach (var (key, value) in members)
        {
            body[((char)('a' + key)).ToString()] = value switch
            {
                -1 => null,
                6 => new JsonObject { ["x"] = key, ["y"] = null },
                _ => value,
            };
        }

        return body.ToJsonString();
    }
}
