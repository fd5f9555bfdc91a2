namespace PR2.Tests.Infrastructure;

/// <summary>Waits on a condition with a deadline (never a bare sleep): polls until true or fails the test.</summary>
public static class Eventually
{
    public static async Task TrueAsync(Func<Task<bool>> condition, TimeSpan deadline, string what)
    {
        var until = DateTime.UtcNow + deadline;
        while (!await condition())
        {
            if (DateTime.UtcNow > until)
            {
                Assert.Fail($"not true within {deadline.TotalSeconds:0.#} s: {what}");
            }

            await Task.Delay(50);
        }
    }
}
