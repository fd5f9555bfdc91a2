using System.CommandLine;
using System.Text.Json;

namespace PR2.Client.Cli;

/// <summary>
/// <c>pr2 send-batch &lt;shard&gt; &lt;file.ndjson&gt;</c>: an atomic batch, one message per line
/// (<c>{"actor": "order/42", "kind": "insert", "body": {...}, "messageId": "...", "expectedVersion": 1}</c>).
/// </summary>
public static class SendBatchCommand
{
    public static Command Build(TextWriter output, TextWriter error)
    {
        var shard = new Argument<int>("shard") { Description = "Shard code: every message of the batch goes to an actor of this shard" };
        var file = new Argument<string>("file")
        {
            Description = "NDJSON, one message per line: actor (type/key), kind (insert, modify, cancel), body (a JSON object), " +
                          "messageId and expectedVersion optional ('-' reads stdin). Give every messageId to retry the batch safely.",
        };
        var sender = new Option<string>("--sender") { Description = "Sender recorded in the journal", DefaultValueFactory = _ => Environment.UserName };
        var command = new Command("send-batch", "Send messages to actors of one shard all together or not at all: pr2 send-batch 1 orders.ndjson") { shard, file, sender };
        command.SetAction(async (result, cancellationToken) =>
        {
            List<Message> messages;
            try
            {
                var path = result.GetValue(file)!;
                var text = path == "-" ? await Console.In.ReadToEndAsync(cancellationToken) : await File.ReadAllTextAsync(path, cancellationToken);
                messages = Parse(result.GetValue(shard), text, result.GetValue(sender)!);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
            {
                await error.WriteLineAsync($"error: {e.Message}");
                return Pr2Cli.BadUsage;
            }

            return await Pr2Cli.RunAsync(result, output, error, cancellationToken, async client =>
            {
                var ack = await client.SendBatchAsync(result.GetValue(shard), messages, cancellationToken);
                if (result.GetValue(Pr2Cli.JsonOption))
                {
                    Output.WriteJson(output, new { ack.Duplicate, Token = ack.Token.ToString(), ack.Acks });
                    return;
                }

                output.WriteLine($"{(ack.Duplicate ? "already accepted" : "accepted")}: {ack.Acks.Length} messages, positions {ack.Acks[0].Position}-{ack.Acks[^1].Position}");
                var table = new TextTable("ACTOR", "VERSION", "POSITION", "STAMP", "MESSAGE");
                foreach (var a in ack.Acks)
                {
                    table.Add(a.Actor.ActorId, a.Version, a.Position, a.Stamp, a.MessageId);
                }

                output.Write(table);
            });
        });
        return command;
    }

    // One message per non-empty line; a line that is not a message is a usage error naming the line.
    internal static List<Message> Parse(int shard, string ndjson, string sender)
    {
        var messages = new List<Message>();
        var lines = ndjson.Split('\n');
        for (var n = 0; n < lines.Length; n++)
        {
            var line = lines[n].Trim();
            if (line.Length == 0)
            {
                continue;
            }

            try
            {
                using var document = JsonDocument.Parse(line);
                var root = document.RootElement;
                var actor = root.GetProperty("actor").GetString() ?? throw new FormatException("actor must be a string");
                var kind = root.GetProperty("kind").GetString() is { } k && Enum.TryParse<MessageKind>(k, ignoreCase: true, out var parsed) && Enum.IsDefined(parsed)
                    ? parsed
                    : throw new FormatException("kind must be insert, modify or cancel");
                var body = root.TryGetProperty("body", out var b) && b.ValueKind is not JsonValueKind.Null ? b.GetRawText() : "";
                var id = root.TryGetProperty("messageId", out var i) && i.ValueKind is not JsonValueKind.Null ? i.GetGuid() : MessageIds.New();
                long? expected = root.TryGetProperty("expectedVersion", out var v) && v.ValueKind is not JsonValueKind.Null ? v.GetInt64() : null;
                messages.Add(new Message(id, sender, ActorRef.Create(shard, actor), kind, body, expected));
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or ArgumentException or Pr2Exception)
            {
                throw new FormatException($"line {n + 1}: not a message ({e.Message}); expected {{\"actor\": \"type/key\", \"kind\": \"insert\", \"body\": {{...}}}}", e);
            }
        }

        return messages.Count > 0 ? messages : throw new FormatException("the file holds no messages");
    }
}
