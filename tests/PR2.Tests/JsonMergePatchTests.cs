using System.Text.Json.Nodes;
using CsCheck;
using PR2.Grains.Json;

namespace PR2.Tests;

/// <summary>
/// The streaming merge patch every modify goes through, against a plain node-tree reading of RFC 7386 (the model):
/// same members, same values, same order, for random nested targets and patches.
/// </summary>
public sealed class JsonMergePatchTests
{
    [Theory]
    [InlineData("""{"a":1,"b":{"c":2,"d":3}}""", """{"b":{"c":null,"e":[1]},"f":"x"}""", """{"a":1,"b":{"d":3,"e":[1]},"f":"x"}""")]
    [InlineData("""{"a":[1,2]}""", """{"a":{"b":null,"c":1}}""", """{"a":{"c":1}}""")]
    [InlineData("""{"a":{"b":1}}""", """{"a":5}""", """{"a":5}""")]
    [InlineData("""{"a":1}""", """{}""", """{"a":1}""")]
    [InlineData("""{"a":1}""", """{"a":null,"b":null}""", """{}""")]
    [InlineData("""{"é":"\u00e9 <&>"}""", """{"n":1.50e3}""", """{"\u00E9":"\u00E9 \u003C\u0026\u003E","n":1.50e3}""")]
    [InlineData("""{"\u00E9":1,"\u0041":{"b":1}}""", """{"é":2,"A":{"c":3}}""", """{"\u00E9":2,"A":{"b":1,"c":3}}""")]
    [InlineData("""{"é":1,"A":2}""", """{"\u00e9":null,"\u0041":null}""", """{}""")]
    public void A_patch_merges_as_the_rfc_says_into_canonical_text(string target, string patch, string expected) =>
        Assert.Equal(expected, JsonMergePatch.Apply(target, patch));

    [Fact]
    public void Random_patches_give_what_the_node_tree_model_gives() =>
        Gen.Select(Gen.Int, Gen.Int).Sample((targetSeed, patchSeed) =>
        {
            var target = RandomObject(new Random(targetSeed), depth: 3, allowNull: false);
            var patch = RandomObject(new Random(patchSeed), depth: 3, allowNull: true);
            var expected = Model(target, patch)!.ToJsonString();
            var actual = JsonMergePatch.Apply(target.ToJsonString(), patch.ToJsonString());
            return expected == actual;
        }, iter: 2000);

    // RFC 7386 on a node tree, the way it reads: a patch object merges member by member, null removes, the rest replaces.
    private static JsonNode? Model(JsonNode? target, JsonNode? patch)
    {
        if (patch is not JsonObject patchObject)
        {
            return patch?.DeepClone();
        }

        var result = target is JsonObject targetObject ? (JsonObject)targetObject.DeepClone() : [];
        foreach (var (name, value) in patchObject)
        {
            if (value is null)
            {
                result.Remove(name);
            }
            else
            {
                result[name] = Model(result[name], value);
            }
        }

        return result;
    }

    // Members named from a small alphabet so that targets and patches overlap; values of every JSON kind.
    private static JsonObject RandomObject(Random random, int depth, bool allowNull)
    {
        var result = new JsonObject();
        for (var i = random.Next(0, 5); i > 0; i--)
        {
            result[((char)('a' + random.Next(0, 5))).ToString()] = RandomValue(random, depth - 1, allowNull);
        }

        return result;
    }

    private static JsonNode? RandomValue(Random random, int depth, bool allowNull) => random.Next(0, depth > 0 ? 7 : 5) switch
    {
        0 when allowNull => null,
        0 or 1 => random.Next(-100, 100),
        2 => $"s{random.Next(0, 3)}",
        3 => random.Next(0, 2) == 0,
        4 => 0.5 * random.Next(0, 9),
        5 => new JsonArray(RandomValue(random, depth - 1, allowNull: false), RandomValue(random, depth - 1, allowNull: true)),
        _ => RandomObject(random, depth, allowNull),
    };
}
