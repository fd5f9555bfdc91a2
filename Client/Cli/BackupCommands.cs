using System.CommandLine;
using System.Globalization;

namespace PR2.Client.Cli;

/// <summary><c>pr2 backup</c> and <c>pr2 restore</c>: a consistent copy of one replica on this machine's disk, and back.</summary>
public static class BackupCommands
{
    public static Command Backup(TextWriter output, TextWriter error)
    {
        var shard = new Argument<int>("shard") { Description = "Shard code" };
        var directory = new Argument<string>("dir") { Description = "A new or empty directory for the backup's files" };
        var replica = new Option<int?>("--replica") { Description = "Index of the replica to copy (default: the primary)" };
        var command = new Command("backup",
            "Write a consistent copy of one replica of a shard (journal, marks, views: one snapshot at a known head) into a directory; writes go on meanwhile")
        {
            shard, directory, replica,
        };
        command.SetAction((result, cancellationToken) => Pr2Cli.RunAsync(result, output, error, cancellationToken, async client =>
        {
            var code = result.GetValue(shard);
            var bar = ProgressBar.For(error, $"backup of shard {code}", p => (p.Rows, p.TotalRows, "rows"));
            var manifest = await client.BackupAsync(code, result.GetValue(directory)!, result.GetValue(replica), bar, cancellationToken);
            bar.Done();
            if (result.GetValue(Pr2Cli.JsonOption))
            {
                Output.WriteJson(output, manifest);
                return;
            }

            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"shard {code}: replica {manifest.Replica} backed up at position {manifest.Position} (clock {manifest.Clock}), " +
                $"{manifest.Tables.Sum(t => t.Rows):N0} rows in {manifest.Tables.Count} tables, {manifest.Tables.Sum(t => t.Bytes) / 1048576.0:0.0} MiB"));
        }));
        return command;
    }

    public static Command Restore(TextWriter output, TextWriter error)
    {
        var shard = new Argument<int>("shard") { Description = "Shard code" };
        var replica = new Argument<int>("replica") { Description = "Index of the replica to bring back (as pr2 shards describe lists them)" };
        var directory = new Argument<string>("dir") { Description = "A directory pr2 backup wrote" };
        var replace = new Option<bool>("--replace") { Description = "Replace the replica's database if it exists (never the primary's): what it holds beyond the backup comes back from the other replicas" };
        var command = new Command("restore",
            "Bring a replica back from a backup (e.g. after its server was lost and replaced): all or nothing, then anti-entropy brings it up to date")
        {
            shard, replica, directory, replace,
        };
        command.SetAction((result, cancellationToken) => Pr2Cli.RunAsync(result, output, error, cancellationToken, async client =>
        {
            var code = result.GetValue(shard);
            var index = result.GetValue(replica);
            var bar = ProgressBar.For(error, $"restore of shard {code} replica {index}", p => (p.Bytes, p.TotalBytes, "bytes"));
            var restored = await client.RestoreAsync(code, index, result.GetValue(directory)!, result.GetValue(replace), bar, cancellationToken);
            bar.Done();
            foreach (var warning in restored.Warnings)
            {
                await error.WriteLineAsync($"warning: {warning}");
            }

            if (result.GetValue(Pr2Cli.JsonOption))
            {
                Output.WriteJson(output, restored);
                return;
            }

            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"shard {code}: replica {index} restored at position {restored.Position}{(restored.Replaced ? " (replaced)" : "")}, " +
                $"new identity {restored.ReplicaId}; anti-entropy brings it up to date"));
        }));
        return command;
    }
}
