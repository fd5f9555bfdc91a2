using Npgsql;
using Orleans.Concurrency;
using PR2.Grains.Storage;

namespace PR2.Grains;

/// <summary>Reads the views rules keep in one shard, from its primary.</summary>
[StatelessWorker]
public sealed class ViewGrain(ShardRegistry shards, TopologyFollower topology) : Grain, IViewGrain
{
    public const int MaxPage = 1000;

    public async Task<IReadOnlyList<ViewDocument>> Query(string view, string? keyPrefix, int limit)
    {
        var shard = (int)this.GetPrimaryKeyLong();
        if (!await topology.KnowsAsync(shard))
        {
            throw new Pr2Exception(ErrorCode.UnknownShard, $"shard {shard} is not configured; known shards: {string.Join(", ", shards.ShardCodes)}");
        }

        if (limit is < 1 or > MaxPage)
        {
            throw new Pr2Exception(ErrorCode.BadMessage, $"limit must be between 1 and {MaxPage}, got {limit}");
        }

        var pattern = LikePattern.StartingWith(keyPrefix);
        try
        {
            await using var command = shards.Get(shard).PrimaryReader.CreateCommand(
                "select key, doc::text, rule, position from pr2_view where view = $1 and key like $2 order by key limit $3");
            command.Parameters.Add(new NpgsqlParameter { Value = view });
            command.Parameters.Add(new NpgsqlParameter { Value = pattern });
            command.Parameters.Add(new NpgsqlParameter { Value = limit });
            var documents = new List<ViewDocument>();
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                documents.Add(new ViewDocument(shard, view, reader.GetString(0), reader.GetString(1),
                    reader.GetString(2)[Rules.RuleAgent.Prefix.Length..], reader.GetInt64(3)));
            }

            return documents;
        }
        catch (NpgsqlException e)
        {
            throw new Pr2Exception(ErrorCode.ShardUnavailable, $"shard {shard} primary is unavailable ({DatabaseFailure.Describe(e)})");
        }
    }
}
