using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.Configuration;
using PR2.Client;
using PR2.Tests.Infrastructure;
using Xunit.Abstractions;

namespace PR2.Tests;

/// <summary>
/// A rolling restart under load, as Kubernetes runs one with the manifests' settings (maxUnavailable 0): three stock
/// silos in their own processes, configured by environment variables, AdoNet membership in its own database; a
/// replacement silo starts and is ready before an old one gets SIGTERM, one at a time, while writers keep sending
/// (retrying by MessageId). No non-retriable answer, nothing acknowledged lost or doubled, every agent caught up after.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class RollingRestartTests(PostgresFixture postgres, ITestOutputHelper output)
{
    [Fact]
    public async Task Restarting_every_silo_one_at_a_time_under_load_gives_no_final_error_and_loses_nothing()
    {
        var topology = postgres.CreateTopology("rolling", 0, 1, 2);
        var settings = new Dictionary<string, string?>(topology.Settings)
        {
            ["Pr2:Silo:Membership"] = postgres.Server.ConnectionString($"rolling_members_{Guid.NewGuid():N}"[..30]),
        };
        var silos = new List<ProcessSilo>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                silos.Add(await ProcessSilo.StartAsync($"silo-{i}", settings));
            }

            using var host = await ProcessSilo.StartClientAsync(settings["Pr2:Silo:Membership"]!);
            var client = new Pr2Client(host.Services.GetRequiredService<IClusterClient>());
            var load = new Load(client);
            var writing = Task.WhenAll(Enumerable.Range(0, 6).Select(load.RunAsync));
            await Eventually.TrueAsync(() => Task.FromResult(load.Acked.Count >= 500), TimeSpan.FromSeconds(30), "the writers under way");

            var rollStarted = load.Clock.Elapsed;
            for (var i = 0; i < 3; i++)
            {
                var replacement = await ProcessSilo.StartAsync($"silo-{i + 3}", settings);
                silos.Add(replacement);
                await WaitReadyAsync(replacement);
                var old = silos[i];
                var stopping = Stopwatch.StartNew();
                await old.TerminateAsync(TimeSpan.FromSeconds(60));
                output.WriteLine($"{old.Name}: graceful stop in {stopping.Elapsed.TotalSeconds:0.0} s, exit code {old.ExitCode}");
                Assert.Equal(0, old.ExitCode);
            }

            var rollEnded = load.Clock.Elapsed;
            var ackedAtEnd = load.Acked.Count;
            await Eventually.TrueAsync(() => Task.FromResult(load.Acked.Count >= ackedAtEnd + 500), TimeSpan.FromSeconds(30),
                "writes acknowledged by the new silos alone");
            load.Stop();
            await writing;

            var during = load.Latencies.Where(l => l.At >= rollStarted && l.At <= rollEnded).Select(l => l.Seconds).Order().ToList();
            output.WriteLine($"acked {load.Acked.Count}, retried answers {load.Retries}, final errors {load.Final.Count}; " +
                $"during the roll ({(rollEnded - rollStarted).TotalSeconds:0} s): {during.Count} acks, p50 {Percentile(during, 0.5) * 1000:0} ms, " +
                $"p99 {Percentile(during, 0.99) * 1000:0} ms, max {during.LastOrDefault() * 1000:0} ms");
            Assert.Empty(load.Final);
            Assert.True(during.Count > 0, "nothing was acknowledged during the roll");

            // Nothing lost or doubled: each acknowledged MessageId once in its shard's journal.
            foreach (var shard in new[] { 1, 2 })
            {
                var ids = await ReplicaContents.MessageIdsAsync(topology.Database(shard));
                Assert.Equal(ids.Count, ids.Distinct().Count());
                var acked = load.Acked.Where(a => a.Actor.Shard == shard).Select(a => a.MessageId).ToList();
                Assert.All(acked, id => Assert.Contains(id, ids));
            }

            // Writers and agents found new homes: every agent catches up on the new silos.
            await Eventually.TrueAsync(async () => (await client.GetStatusAsync()).Shards.All(s => s.Agents.All(a => a.Lag == 0)),
                TimeSpan.FromSeconds(60), "every agent caught up after the roll");
        }
        finally
        {
            foreach (var silo in silos)
            {
                silo.Dispose();
            }
        }
    }

    private static double Percentile(List<double> sorted, double p) => sorted.Count == 0 ? 0 : sorted[Math.Min(sorted.Count - 1, (int)(p * sorted.Count))];

    private static async Task WaitReadyAsync(ProcessSilo silo)
    {
        using var http = new HttpClient { BaseAddress = silo.Http, Timeout = TimeSpan.FromSeconds(5) };
        await Eventually.TrueAsync(async () =>
        {
            try
            {
                return (await http.GetAsync("/ready")).IsSuccessStatusCode;
            }
            catch (HttpRequestException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(60), $"{silo.Name} ready");
    }

    /// <summary>Writers inserting then modifying their own actors, each message retried by its MessageId on retriable answers.</summary>
    private sealed class Load(Pr2Client client)
    {
        private volatile bool _stop;

        public Stopwatch Clock { get; } = Stopwatch.StartNew();

        public ConcurrentBag<WriteAck> Acked { get; } = [];

        public ConcurrentBag<(TimeSpan At, double Seconds)> Latencies { get; } = [];

        public ConcurrentBag<string> Final { get; } = [];

        public long Retries;

        public void Stop() => _stop = true;

        public async Task RunAsync(int writer)
        {
            var versions = new Dictionary<int, long>();
            for (var n = 0; !_stop; n++)
            {
                var key = n % 20;
                var kind = versions.ContainsKey(key) ? MessageKind.Modify : MessageKind.Insert;
                var message = new Message(Guid.NewGuid(), "rolling", new ActorRef(1 + (writer % 2), $"roll/{writer}-{key}"), kind, $$"""{"n": {{n}}}""");
                var started = Clock.Elapsed;
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
                while (true)
                {
                    try
                    {
                        var ack = await client.SendAsync(message);
                        Acked.Add(ack);
                        Latencies.Add((Clock.Elapsed, (Clock.Elapsed - started).TotalSeconds));
                        versions[key] = ack.Version;
                        break;
                    }
                    catch (Pr2Exception e) when (e.IsRetriable && DateTime.UtcNow < deadline)
                    {
                        Interlocked.Increment(ref Retries);
                        await Task.Delay(100);
                    }
                    catch (Exception e)
                    {
                        Final.Add($"{message.Receiver} {kind}: {e.GetType().Name}: {e.Message}");
                        break;
                    }
                }
            }
        }
    }
}
