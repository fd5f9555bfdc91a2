using Polly;
using Polly.Retry;

namespace PR2.Client;

/// <summary>The Polly pipeline that carries out <see cref="Pr2RetryOptions"/>: retriable <see cref="Pr2Exception"/>s only.</summary>
internal static class RetryPipeline
{
    public static ResiliencePipeline Build(Pr2RetryOptions options) =>
        options.MaxAttempts <= 1
            ? ResiliencePipeline.Empty
            : new ResiliencePipelineBuilder().AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<Pr2Exception>(e => e.IsRetriable),
                MaxRetryAttempts = options.MaxAttempts - 1,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = options.FirstDelay,
                MaxDelay = options.MaxDelay,
            }).Build();
}
