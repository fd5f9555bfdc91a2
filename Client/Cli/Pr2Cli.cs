using System.CommandLine;
using System.Globalization;

namespace PR2.Client.Cli;

/// <summary>
/// The <c>pr2</c> command line: send messages, read records and journals, show status and the directory,
/// manage rules and read the views they keep.
/// Every command takes <c>--json</c> (machine-readable output) and <c>--gateway host:port</c>.
/// Errors are one line on stderr; exit codes: 0 done, 1 refused by PR2, 2 bad usage, 3 cluster unreachable.
/// </summary>
public static class Pr2Cli
{
    public const int Refused = 1;
    public const int BadUsage = 2;
    public const int Unreachable = 3;

    internal static readonly Option<bool> JsonOption = new("--json") { Description = "Write JSON instead of text", Recursive = true };

    private static readonly Option<string?> GatewayOption = new("--gateway")
    {
        Description = $"Silo gateway host:port (default: ${ClusterConnection.GatewayVariable} or {ClusterConnection.DefaultGateway})",
        Recursive = true,
    };

    public static RootCommand Build(TextWriter output, TextWriter error)
    {
        var root = new RootCommand("pr2: send messages to PR2 actors and read records, journals, status and the directory")
        {
            Send(output, error),
            SendBatchCommand.Build(output, error),
            Get(output, error),
            Journal(output, error),
            Status(output, error),
            Directory(output, error),
            ShardCommands.Build(output, error),
            ReplicaCommands.Build(output, error),
            ProjectionCommands.Build(output, error),
            BackupCommands.Backup(output, error),
            BackupCommands.Restore(output, error),
            RuleCommands.Build(output, error),
            ViewCommand.Build(output, error),
            QueryCommand.Build(output, error),
            WatchCommand.Build(output, error),
        };
        root.Options.Add(JsonOption);
        root.Options.Add(GatewayOption);
        return root;
    }

    private static Command Send(TextWriter output, TextWriter error)
    {
        // "<shard> <actor> <kind> [json]", or with the actor as printed: "<shard:actor> <kind> [json]".
        var arguments = new Argument<string[]>("arguments")
        {
            Description = $"{ActorTokens.Usage}, then insert, modify or cancel, then the body: a JSON object ('-' reads stdin; none for cancel)",
            Arity = new ArgumentArity(2, 4),
        };
        arguments.Validators.Add(result =>
        {
            var tokens = result.Tokens.Select(t => t.Value).ToList();
            ActorTokens.Validate(result);
            var at = ActorTokens.Width(tokens, 0);
            if (tokens.Count <= at || tokens[at] is not ("insert" or "modify" or "cancel"))
            {
                result.AddError($"expected insert, modify or cancel after the actor, got '{(tokens.Count > at ? tokens[at] : "")}'");
            }
            else if (tokens.Count > at + 2)
            {
                result.AddError($"unexpected '{tokens[at + 2]}' after the body (quote the JSON as one argument)");
            }
        });
        var id = new Option<Guid?>("--id") { Description = "MessageId (idempotency key); sending the same id again returns the first acknowledgement" };
        var expect = new Option<long?>("--expect-version") { Description = "Refuse unless the record is at this version (0 = no record yet)" };
        var sender = new Option<string>("--sender") { Description = "Sender recorded in the journal", DefaultValueFactory = _ => Environment.UserName };
        var command = new Command("send", "Send insert, modify or cancel to an actor: pr2 send 1 order/42 insert '{...}', or pr2 send 1:order/42 insert '{...}'") { arguments, id, expect, sender };
        command.SetAction((result, cancellationToken) => RunAsync(result, output, error, cancellationToken, async client =>
        {
            var tokens = result.GetValue(arguments)!;
            var (shard, actor) = ActorTokens.Parse(tokens);
            var at = ActorTokens.Width(tokens, 0);
            var text = tokens.Length > at + 1 ? tokens[at + 1] : null;
            if (text == "-")
            {
                text = await Console.In.ReadToEndAsync(cancellationToken);
            }

            var messageKind = Enum.Parse<MessageKind>(tokens[at], ignoreCase: true);
            var ack = await client.SendAsync(shard, actor, messageKind, text,
                result.GetValue(id) ?? MessageIds.New(), result.GetValue(expect), result.GetValue(sender)!);
            if (result.GetValue(JsonOption))
            {
                Output.WriteJson(output, ack);
                return;
            }

            output.WriteLine($"{(ack.Duplicate ? "already accepted" : "accepted")}: {ack.Actor} version {ack.Version}, position {ack.Position}, stamp {ack.Stamp}, message {ack.MessageId}");
        }));
        return command;
    }

    private static Command Get(TextWriter output, TextWriter error)
    {
        var target = new Argument<string[]>("actor") { Description = ActorTokens.Usage, Arity = new ArgumentArity(1, 2) };
        target.Validators.Add(result => ActorTokens.Validate(result));
        var asOf = new Option<string?>("--as-of") { Description = "The record as it was at a Lamport stamp counter@shard (as acknowledgements print them)" };
        var command = new Command("get", "Show an actor's record: pr2 get 1 order/42, or pr2 get 1:order/42") { target, asOf };
        command.SetAction((result, cancellationToken) => RunAsync(result, output, error, cancellationToken, async client =>
        {
            var (shard, actor) = ActorTokens.Parse(result.GetValue(target)!);
            var record = result.GetValue(asOf) is { } stamp
                ? (await client.ReadRecordAsOfAsync(shard, actor, LamportStamp.Parse(stamp), cancellationToken)).Record
                : await client.GetRecordAsync(shard, actor, cancellationToken);
            if (result.GetValue(JsonOption))
            {
                Output.WriteJson(output, Output.ToJson(record));
                return;
            }

            output.WriteLine($"actor    {record.Actor}");
            output.WriteLine($"status   {Output.Status(record.Status)}");
            output.WriteLine($"version  {record.Version}");
            output.WriteLine($"first    {Output.Stamp(record.FirstStamp)}");
            output.WriteLine($"last     {Output.Stamp(record.LastStamp)}{(record.LastPosition > 0 ? $" (position {record.LastPosition})" : "")}");
            output.WriteLine($"state    {Output.Pretty(record.State)}");
        }));
        return command;
    }

    private static Command Journal(TextWriter output, TextWriter error)
    {
        var shard = new Argument<int>("shard") { Description = "Shard code" };
        var from = new Option<long>("--from") { Description = "First position to show", DefaultValueFactory = _ => 1 };
        var limit = new Option<int>("--limit") { Description = "Most entries to show (1..1000)", DefaultValueFactory = _ => 50 };
        var tail = new Option<int?>("--tail") { Description = "The last N entries (1..1000), instead of --from and --limit" };
        var command = new Command("journal", "Show a shard's journal entries in position order") { shard, from, limit, tail };
        command.SetAction((result, cancellationToken) => RunAsync(result, output, error, cancellationToken, async client =>
        {
            var (first, count) = (result.GetValue(from), result.GetValue(limit));
            if (result.GetValue(tail) is { } last)
            {
                var head = await client.GetHeadAsync(result.GetValue(shard), cancellationToken);
                (first, count) = (Math.Max(1, head - last + 1), last);
            }

            var entries = await client.ReadJournalAsync(result.GetValue(shard), first, count, cancellationToken);
            if (result.GetValue(JsonOption))
            {
                Output.WriteJson(output, entries.Select(Output.ToJson));
                return;
            }

            var table = new TextTable("POSITION", "STAMP", "ACTOR", "KIND", "VERSION", "RECORDED", "BODY");
            foreach (var e in entries)
            {
                table.Add(e.Position, e.Stamp, e.Actor.ActorId, Output.Kind(e.Kind), e.Version,
                    e.RecordedAt.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture), Output.Shorten(e.Body, 60));
            }

            output.Write(table);
        }));
        return command;
    }

    // "3", or "3, 1.2 s" when behind and the age of its oldest unapplied entry is known.
    private static string AgentLag(AgentProgress agent) =>
        agent.Lag > 0 && agent.LagSeconds >= 0
            ? $"{agent.Lag}, {agent.LagSeconds.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture)} s"
            : agent.Lag.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static Command Status(TextWriter output, TextWriter error)
    {
        var command = new Command("status", "Show shards, replicas, journal heads, and agent marks and lag per shard");
        command.SetAction((result, cancellationToken) => RunAsync(result, output, error, cancellationToken, async client =>
        {
            var status = await client.GetStatusAsync();
            if (result.GetValue(JsonOption))
            {
                Output.WriteJson(output, status);
                return;
            }

            var table = new TextTable("SHARD", "HEAD", "CLOCK", "AGENTS (mark, lag)");
            var replicas = new TextTable("SHARD", "REPLICA", "ENDPOINT", "ROLE", "STATE", "HEAD", "BEHIND", "OUTBOX", "PARKED", "VECTOR");
            foreach (var s in status.Shards)
            {
                table.Add(s.Shard, s.Head, s.Clock, string.Join(", ", s.Agents.Select(a => $"{a.Agent} {a.Mark} (lag {AgentLag(a)})")));
                foreach (var r in s.Replicas)
                {
                    var vector = r.Vector is null ? "-" : string.Join(" ", r.Vector.Where(p => p.Value > 0).OrderBy(p => p.Key).Select(p => $"{p.Key.ToString()[..8]}:{p.Value}"));
                    var state = !r.Reachable ? "down" : r.Behind > 0 ? "catching up" : "up";
                    replicas.Add(s.Shard, r.Index, r.Endpoint, r.Primary ? "primary" : "replica", state, r.Reachable ? r.Head : "-",
                        r.Reachable ? r.Behind : "-", r.Reachable ? r.OutboxPending : "-", r.Reachable ? r.Parked : "-", vector);
                }
            }

            output.Write(table);
            output.WriteLine();
            output.Write(replicas);
            if (status.PrimaryChanges is { Count: > 0 } changes)
            {
                var failovers = new TextTable("SHARD", "NEW PRIMARY", "AT");
                foreach (var change in changes)
                {
                    failovers.Add(change.Shard, change.Primary, change.At.ToString("u", System.Globalization.CultureInfo.InvariantCulture));
                }

                output.WriteLine();
                output.Write(failovers);
            }
            if (status.Silos is { Count: > 0 } silos)
            {
                var members = new TextTable("SILO", "ADDRESS", "STATUS", "STARTED");
                foreach (var silo in silos.Where(s => s.Status != "Dead"))
                {
                    members.Add(silo.Name, silo.Address, silo.Status, silo.StartedAt.ToString("u", System.Globalization.CultureInfo.InvariantCulture));
                }

                output.WriteLine();
                output.Write(members);
            }
        }));
        return command;
    }

    private static Command Directory(TextWriter output, TextWriter error)
    {
        var type = new Option<string?>("--type") { Description = "List the actors of this type and where they are" };
        var prefix = new Option<string?>("--prefix") { Description = "Only actor ids starting with this (with --type or alone)" };
        var limit = new Option<int>("--limit") { Description = "Most actors to list (1..1000)", DefaultValueFactory = _ => 100 };
        var command = new Command("directory", "Show the directory: shards, agents and actor types, or the actors of one type") { type, prefix, limit };
        command.SetAction((result, cancellationToken) => RunAsync(result, output, error, cancellationToken, async client =>
        {
            var json = result.GetValue(JsonOption);
            if (result.GetValue(type) is not null || result.GetValue(prefix) is not null)
            {
                var objects = await client.FindObjectsAsync(result.GetValue(type), result.GetValue(prefix), result.GetValue(limit));
                if (json)
                {
                    Output.WriteJson(output, objects);
                    return;
                }

                var found = new TextTable("SHARD", "ACTOR", "STATUS", "FIRST POSITION");
                foreach (var o in objects)
                {
                    found.Add(o.Shard, o.ActorId, Output.Status(o.Status), o.FirstPosition);
                }

                output.Write(found);
                return;
            }

            var shards = await client.GetShardsAsync();
            var agents = await client.GetAgentsAsync();
            var types = await client.GetActorTypesAsync();
            if (json)
            {
                Output.WriteJson(output, new { shards, agents, types });
                return;
            }

            var shardTable = new TextTable("SHARD", "STATUS", "PRIMARY", "REPLICAS", "CHANGES");
            foreach (var s in shards)
            {
                var replicas = s.Replicas.Select((endpoint, i) => i < s.ReplicaStates.Count ? $"{endpoint} ({s.ReplicaStates[i]})" : endpoint);
                shardTable.Add(s.Shard, s.Status, s.Primary, string.Join(", ", replicas), s.Version);
            }

            var agentTable = new TextTable("AGENT", "FOLLOWS");
            foreach (var (name, follows) in agents)
            {
                agentTable.Add(name, string.Join(", ", follows));
            }

            var typeTable = new TextTable("TYPE", "LIVE", "CANCELED");
            foreach (var t in types)
            {
                typeTable.Add(t.Type, t.Live, t.Canceled);
            }

            output.Write(shardTable);
            output.WriteLine();
            output.Write(agentTable);
            output.WriteLine();
            output.Write(typeTable);
        }));
        return command;
    }

    // Connects, runs the command, and turns failures into one line on stderr and an exit code.
    internal static async Task<int> RunAsync(ParseResult result, TextWriter output, TextWriter error, CancellationToken cancellationToken, Func<Pr2Client, Task> action)
    {
        try
        {
            await using var connection = await ClusterConnection.OpenAsync(result.GetValue(GatewayOption), cancellationToken);
            await action(connection.Client);
            await output.FlushAsync(cancellationToken);
            return 0;
        }
        catch (Pr2Exception e)
        {
            await error.WriteLineAsync($"error: {e.Code}: {(e.Refusals.Length > 0 ? $"the batch was refused, nothing of it was written ({e.Refusals.Length} refused)" : e.Message)}");
            foreach (var refusal in e.Refusals)
            {
                await error.WriteLineAsync($"  message {refusal.Index + 1} ({refusal.MessageId}): {refusal.Code}: {refusal.Reason}");
            }

            return e.Code is ErrorCode.BadActorId or ErrorCode.BadBody or ErrorCode.BadMessage or ErrorCode.BadRule ? BadUsage : Refused;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            await error.WriteLineAsync($"error: {e.Message}");
            return Refused;
        }
        catch (ClusterUnreachableException e)
        {
            await error.WriteLineAsync($"error: {e.Message}");
            return Unreachable;
        }
        catch (Exception e) when (e is TimeoutException or Orleans.Runtime.OrleansException)
        {
            await error.WriteLineAsync($"error: the cluster did not answer: {e.Message}");
            return Unreachable;
        }
    }
}
