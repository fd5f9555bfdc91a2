using Npgsql;

namespace PR2.Grains.Rules;

/// <summary>Runs one entry's effects inside a savepoint: a <see cref="RuleFailure"/> undoes them all and is returned; anything else propagates.</summary>
public static class EntrySavepoint
{
    private const string Name = "rule_entry";

    /// <summary>Null when the effects stand; the failure when they were undone.</summary>
    public static async Task<RuleFailure?> TryAsync(NpgsqlTransaction transaction, Func<Task> effects, CancellationToken cancellationToken)
    {
        await transaction.SaveAsync(Name, cancellationToken);
        try
        {
            await effects();
            await transaction.ReleaseAsync(Name, cancellationToken);
            return null;
        }
        catch (RuleFailure failure)
        {
            await transaction.RollbackAsync(Name, cancellationToken);
            await transaction.ReleaseAsync(Name, cancellationToken);
            return failure;
        }
    }
}
