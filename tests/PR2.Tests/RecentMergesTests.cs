using PR2.Grains.Json;
using PR2.Grains.Records;

namespace PR2.Tests;

/// <summary>
/// An actor's merge, kept for the records agent on its silo (<see cref="RecentMerges"/>), stands in for a merge only
/// when it is the same merge: the same body text merged into the same state (members in any order, which jsonb does not
/// keep). Anything else is merged afresh.
/// </summary>
public sealed class RecentMergesTests
{
    private const string State = """{"total":10,"lines":{"a":1}}""";

    [Fact]
    public void A_kept_merge_is_taken_once_for_a_state_with_the_same_text()
    {
        var merges = new RecentMerges();
        var patch = """{"total":12,"lines":{"b":2}}""";
        var result = merges.MergeAhead(State, patch);

        // The agent's copy of the state is another string with the same characters.
        var taken = merges.Merge(new string(State.AsSpan()), patch);
        Assert.Same(result, taken);
        Assert.Equal(1, merges.Taken);

        // Used once: the same merge again is worked out, with the same answer.
        var again = merges.Merge(State, patch);
        Assert.NotSame(result, again);
        Assert.Equal(result, again);
        Assert.Equal(1, merges.Taken);
    }

    [Fact]
    public void A_kept_merge_into_the_same_state_in_another_member_order_is_taken()
    {
        // An actor that read its journal holds the state in jsonb's member order; the agent may hold the body's order.
        var merges = new RecentMerges();
        var patch = """{"total":12}""";
        var result = merges.MergeAhead("""{"lines":{"a":1,"b":[1,{"x":"é","y":true}]},"total":10}""", patch);

        Assert.Same(result, merges.Merge("""{"total":10,"lines":{"b":[1,{"y":true,"x":"é"}],"a":1}}""", patch));
        Assert.Equal(1, merges.Taken);
    }

    [Theory]
    [InlineData("""{"total":10.0,"lines":{"a":1}}""")] // 10.0 and 10 are different jsonb texts
    [InlineData("""{"total":10,"lines":{"a":1,"b":null}}""")]
    [InlineData("""{"total":10,"lines":{"a":[1]}}""")]
    [InlineData("""{"total":"10","lines":{"a":1}}""")]
    [InlineData("""{"total":10}""")]
    public void A_kept_merge_into_a_state_with_another_value_is_not_taken(string agentState)
    {
        var merges = new RecentMerges();
        var patch = """{"lines":{"c":3}}""";
        merges.MergeAhead(State, patch);

        Assert.Equal(JsonMergePatch.Apply(agentState, patch), merges.Merge(agentState, patch));
        Assert.Equal(0, merges.Taken);
    }

    [Fact]
    public void A_merge_is_found_by_its_body_text_itself_and_not_by_equal_text()
    {
        var merges = new RecentMerges();
        var patch = """{"total":11}""";
        merges.MergeAhead(State, patch);

        Assert.Equal(JsonMergePatch.Apply(State, patch), merges.Merge(State, new string(patch.AsSpan())));
        Assert.Equal(0, merges.Taken);
        merges.Merge(State, patch);
        Assert.Equal(1, merges.Taken);
    }

    [Fact]
    public void Past_its_capacity_the_store_starts_over()
    {
        var merges = new RecentMerges();
        var patches = Enumerable.Range(0, RecentMerges.Capacity + 1).Select(i => $$"""{"n":{{i}}}""").ToList();
        foreach (var patch in patches)
        {
            merges.MergeAhead(State, patch);
        }

        merges.Merge(State, patches[0]);
        Assert.Equal(0, merges.Taken);
        Assert.Equal($$"""{"total":10,"lines":{"a":1},"n":{{RecentMerges.Capacity}}}""", merges.Merge(State, patches[^1]));
        Assert.Equal(1, merges.Taken);
    }
}
