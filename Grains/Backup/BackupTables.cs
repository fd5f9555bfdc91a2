using Npgsql;

namespace PR2.Grains.Backup;

/// <summary>
/// Which tables of a replica database a backup copies, in the order a restore loads them, and which it leaves out.
/// A new table must land in one list or the other (a test compares both with the migrated schema), so a backup can
/// never miss data silently.
/// </summary>
public static class BackupTables
{
    /// <summary>The shard's data: its journal and what the agents keep from it, with their marks.</summary>
    public static readonly IReadOnlyList<string> Copied =
    [
        "pr2_journal",
        "pr2_origin_vector",
        "pr2_restamp",
        "pr2_agent_mark",
        "pr2_record",
        "pr2_object_directory",
        "pr2_view",
        "pr2_outbox",
        "pr2_dead_letter",
        "pr2_stream_checkpoint",
    ];

    /// <summary>
    /// Not copied: the replica's identity (a restored replica gets a new one) and writer head (the manifest carries it),
    /// the schema record (the restore's migration writes its own), and the Orleans cluster's runtime state that lives in
    /// the control shard's database (membership, the provider's queries, grain state): it belongs to the running cluster,
    /// not to the shard, and an old copy of it would be wrong. A rebuild in progress (the records view's, a rule's views')
    /// belongs to the replica it runs on: the copy holds the live views, and a restored replica starts with no rebuild.
    /// </summary>
    public static readonly IReadOnlyList<string> Left =
    [
        "pr2_replica",
        "pr2_writer_head",
        "pr2_schema_version",
        "pr2_membership",
        "pr2_membership_version",
        "orleansquery",
        "pr2_grain_state",
        "pr2_projection_rebuild",
        "pr2_view_rebuild",
        "pr2_object_directory_rebuild",
    ];

    /// <summary>The copied tables that exist in this database (some are the control shard's only), in restore order.</summary>
    public static async Task<IReadOnlyList<string>> PresentAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            "select relname from pg_class where relkind = 'r' and relnamespace = 'public'::regnamespace and relname = any($1)", connection);
        command.Parameters.Add(new() { Value = Copied.ToArray() });
        var present = new HashSet<string>(StringComparer.Ordinal);
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                present.Add(reader.GetString(0));
            }
        }

        return [.. Copied.Where(present.Contains)];
    }

    /// <summary>A table's stored columns in order (generated ones are computed again on insert, so never copied).</summary>
    public static async Task<IReadOnlyList<string>> ColumnsAsync(NpgsqlConnection connection, string table, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("""
            select attname from pg_attribute
            where attrelid = $1::regclass and attnum > 0 and not attisdropped and attgenerated = ''
            order by attnum
            """, connection);
        command.Parameters.Add(new() { Value = table });
        var columns = new List<string>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            columns.Add(reader.GetString(0));
        }

        return columns;
    }

    /// <summary>A column list for COPY, each name quoted.</summary>
    public static string ColumnList(IEnumerable<string> columns) =>
        string.Join(", ", columns.Select(c => "\"" + c.Replace("\"", "\"\"", StringComparison.Ordinal) + "\""));

    /// <summary>True for a name of <see cref="Copied"/> (the only names a restore puts into SQL).</summary>
    public static bool IsCopied(string table) => Copied.Contains(table, StringComparer.Ordinal);
}
