using PR2.Grains.Configuration;

namespace PR2.Tests;

/// <summary>A shard to add is checked before anything is created: each bad request says what is wrong with it.</summary>
public sealed class NewShardRulesTests
{
    public static TheoryData<NewShard, string> Refused => new()
    {
        { new NewShard(0, ["Pr2:Connections:a"]), "code of 1 or more" },
        { new NewShard(-4, ["Pr2:Connections:a"]), "code of 1 or more" },
        { new NewShard(5, []), "1 to 16 replicas" },
        { new NewShard(5, [.. Enumerable.Range(0, 17).Select(i => $"Pr2:Connections:r{i}")]), "1 to 16 replicas" },
        { new NewShard(5, ["Host=db;Password=secret"]), "never by the connection string itself" },
        { new NewShard(5, [""]), "replica 0: name its connection by a configuration key under Pr2:Connections:" },
        { new NewShard(5, ["Pr2:Connections:a", null!]), "replica 1: name its connection" },
        { new NewShard(5, ["Pr2:Silo:Membership"]), "under Pr2:Connections:" },
        { new NewShard(5, ["Pr2:Topology:Shards:1:Replicas:0"]), "under Pr2:Connections:" },
        { new NewShard(5, ["Pr2:Connections:a", "Pr2:Connections:A"]), "its own configuration key" },
        { new NewShard(5, ["Pr2:Connections:a"], "1"), "is not one of Primary, Quorum, All" },
        { new NewShard(5, ["Pr2:Connections:a"], "Majority"), "is not one of Primary, Quorum, All" },
        { new NewShard(5, ["Pr2:Connections:a"], Name: new string('n', 201)), "at most 200 characters" },
        { new NewShard(5, ["Pr2:Connections:a"], Labels: new Dictionary<string, string> { ["bad key!"] = "x" }), "a label key is" },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public void A_bad_request_is_refused_with_the_reason(NewShard shard, string reason)
    {
        var problem = NewShardRules.Problem(shard);
        Assert.Contains(reason, problem);
        Assert.DoesNotContain("secret", problem); // what was given is never echoed: it may be a password
    }

    [Fact]
    public void A_good_request_passes() =>
        Assert.Null(NewShardRules.Problem(new NewShard(9, ["Pr2:Connections:acme-a", "Pr2:Connections:acme-b"], "quorum", "Acme", "ops",
            new Dictionary<string, string> { ["region"] = "eu" })));
}
