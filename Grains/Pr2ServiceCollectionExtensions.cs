using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using PR2.Grains.Agents;
using PR2.Grains.Configuration;
using PR2.Grains.Records;
using PR2.Grains.Rules;
using PR2.Grains.Storage;
using PR2.Grains.Writing;

namespace PR2.Grains;

/// <summary>Registers what the PR2 grains need inside a silo.</summary>
public static class Pr2ServiceCollectionExtensions
{
    public static IServiceCollection AddPr2Grains(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<TopologyOptions>().Bind(configuration.GetSection(TopologyOptions.SectionName)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<TopologyOptions>, TopologyOptionsValidator>();
        services.AddOptions<WriteOptions>().Bind(configuration.GetSection(WriteOptions.SectionName)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<WriteOptions>, WriteOptionsValidator>();
        services.AddOptions<ProjectionOptions>().Bind(configuration.GetSection(ProjectionOptions.SectionName)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<ProjectionOptions>, ProjectionOptionsValidator>();
        services.AddOptions<GrainCollectionOptions>().Configure<IOptions<WriteOptions>>((collection, write) =>
            collection.ClassSpecificCollectionAge[typeof(ActorGrain).FullName!] = TimeSpan.FromMinutes(write.Value.ActorIdleMinutes));
        services.AddSingleton<ShardRegistry>();
        services.AddSingleton<LocalJournalWriters>();
        services.AddSingleton<RecentEntries>();
        services.AddSingleton<RecentMerges>();
        services.AddSingleton<ShardAppender>();
        services.AddSingleton<SchemaMigrator>();
        services.AddSingleton<TopologyFollower>();
        services.AddSingleton<Streaming.StreamReaders>();
        services.AddSingleton(new ConnectionKeys(configuration));
        services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>, SchemaMigrationParticipant>();
        services.AddSingleton<IJournalAgent, RecordsProjector>();
        services.AddSingleton<IJournalAgent, ObjectDirectoryProjector>();
        services.AddSingleton<RuleSet>();
        services.AddSingleton<AgentCatalog>();
        services.TryAddSingleton<IAgentFaultInjector, NoAgentFaults>();
        services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>, AgentSupervisor>();
        services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>, DirectorySync>();
        services.AddSingleton<IIncomingGrainCallFilter, WriteMetricsFilter>();
        // After the metrics filter, so its refusal counts see the Unavailable this one makes of an escaping database failure.
        services.AddSingleton<IIncomingGrainCallFilter, DatabaseFailureFilter>();
        return services;
    }

    /// <summary>Registers a rule written in C# (see <see cref="IRule"/>); it runs in every silo that registers it.</summary>
    public static IServiceCollection AddPr2Rule<TRule>(this IServiceCollection services)
        where TRule : class, IRule
    {
        services.AddSingleton<IRule, TRule>();
        return services;
    }
}
