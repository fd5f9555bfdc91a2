using Microsoft.Extensions.Logging;
using Npgsql;
using PR2.Grains.Storage;

namespace PR2.Grains;

/// <summary>
/// The last line between a database failure and a caller: a grain call that ends in an exception of the database driver
/// (which Orleans cannot carry across the wire: its type has no codec, so the caller would get a serializer error naming
/// none of it) ends instead in <see cref="ErrorCode.Unavailable"/>: outcome unknown, safe to retry, with the kind of failure
/// and its SQLSTATE. The server's own text (which can quote data) goes to this silo's log only. Grains that know better
/// (a refusal before anything was written, a failover) answer with their own codes before it comes to this.
/// </summary>
public sealed class DatabaseFailureFilter(ILogger<DatabaseFailureFilter> logger) : IIncomingGrainCallFilter
{
    // Most calls end without an exception: no async frame of its own for those that completed at once.
    public Task Invoke(IIncomingGrainCallContext context)
    {
        var call = context.Invoke();
        return call.IsCompletedSuccessfully ? call : DescribeFailureAsync(call, context);
    }

    private async Task DescribeFailureAsync(Task call, IIncomingGrainCallContext context)
    {
        try
        {
            await call;
        }
        catch (Exception e) when (DatabaseCause(e) is { } cause)
        {
            Log.DatabaseFailureEscaped(logger, e, context.InterfaceName, context.MethodName);
            throw new Pr2Exception(ErrorCode.Unavailable,
                $"{context.InterfaceName}.{context.MethodName}: a database call failed ({DatabaseFailure.Describe(cause)}); " +
                "the outcome is unknown (a write may have committed); retry (a write with the same MessageId)");
        }
    }

    // The driver's exception this one is or wraps (an aggregate of parallel calls, a wrapper of our own), if any.
    private static Exception? DatabaseCause(Exception e)
    {
        for (Exception? current = e; current is not null and not Pr2Exception; current = current.InnerException)
        {
            // A pool closed under the call (a removed shard's, after its grace; or at shutdown) is a database failure too:
            // retried, the call finds the shard removed, or the silo gone.
            if (current is NpgsqlException || (current is ObjectDisposedException && current.Source == "Npgsql"))
            {
                return current;
            }

            if (current is AggregateException { InnerExceptions: [var first, ..] })
            {
                return DatabaseCause(first);
            }
        }

        return null;
    }
}
