using Microsoft.Extensions.Options;

namespace PR2.Grains.Configuration;

/// <summary>Refuses projection settings that cannot work, naming the key.</summary>
public sealed class ProjectionOptionsValidator : IValidateOptions<ProjectionOptions>
{
    public ValidateOptionsResult Validate(string? name, ProjectionOptions options) =>
        options.RebuildEntriesPerSecond < 0
            ? ValidateOptionsResult.Fail($"{ProjectionOptions.SectionName}:{nameof(options.RebuildEntriesPerSecond)} must be 0 (no limit) or more, got {options.RebuildEntriesPerSecond}")
            : ValidateOptionsResult.Success;
}
