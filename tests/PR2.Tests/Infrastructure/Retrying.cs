using PR2.Client;

namespace PR2.Tests.Infrastructure;

/// <summary>A client that retries retriable refusals with the same MessageId, as the refusals say to, within a deadline.</summary>
public static class Retrying
{
    /// <summary>Sends until an acknowledgement or a final refusal; <paramref name="onRetry"/> sees every retriable answer.</summary>
    public static async Task<WriteAck> SendAsync(Pr2Client client, Message message, Action<Pr2Exception>? onRetry = null)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            try
            {
                return await client.SendAsync(message);
            }
            catch (Pr2Exception e) when (e.IsRetriable && DateTime.UtcNow < deadline)
            {
                onRetry?.Invoke(e);
                await Task.Delay(100);
            }
        }
    }

    /// <summary>Repeats an idempotent call (a rule put, a read) on retriable refusals, within a deadline.</summary>
    public static async Task<T> CallAsync<T>(Func<Task<T>> call)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            try
            {
                return await call();
            }
            catch (Pr2Exception e) when (e.IsRetriable && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }
    }
}
