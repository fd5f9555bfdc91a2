using Microsoft.Extensions.Options;

namespace PR2.Grains.Configuration;

/// <summary>Refuses write limits that cannot work, naming the key.</summary>
public sealed class WriteOptionsValidator : IValidateOptions<WriteOptions>
{
    public ValidateOptionsResult Validate(string? name, WriteOptions options)
    {
        var failures = new List<string>();
        if (options.MaxBodyBytes < 2)
        {
            failures.Add($"{WriteOptions.SectionName}:{nameof(options.MaxBodyBytes)} must be at least 2 (the size of {{}}), got {options.MaxBodyBytes}");
        }

        if (options.MaxBatchSize is < 1 or > 10_000)
        {
            failures.Add($"{WriteOptions.SectionName}:{nameof(options.MaxBatchSize)} must be between 1 and 10000, got {options.MaxBatchSize}");
        }

        if (options.CommandTimeoutSeconds is < 1 or > 300)
        {
            failures.Add($"{WriteOptions.SectionName}:{nameof(options.CommandTimeoutSeconds)} must be between 1 and 300, got {options.CommandTimeoutSeconds}");
        }

        if (options.CallTimeoutSeconds is < 1 or > 60)
        {
            failures.Add($"{WriteOptions.SectionName}:{nameof(options.CallTimeoutSeconds)} must be between 1 and 60 (seconds), got {options.CallTimeoutSeconds}");
        }

        if (options.ActorIdleMinutes is <= 1 or > 24 * 60)
        {
            failures.Add($"{WriteOptions.SectionName}:{nameof(options.ActorIdleMinutes)} must be more than 1 (Orleans looks for idle activations once a minute) and at most 1440, got {options.ActorIdleMinutes}");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
