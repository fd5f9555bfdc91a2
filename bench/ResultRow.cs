using System.Text.Json.Serialization;

namespace PR2.Bench;

/// <summary>One measured row: a path at a writer count, in one repeat of the run (1: the first, cold one).</summary>
internal sealed record ResultRow(
    [property: JsonPropertyName("path")] string Path,
    [property: JsonPropertyName("shards")] int Shards,
    [property: JsonPropertyName("writers")] int Writers,
    [property: JsonPropertyName("messages")] long Messages,
    [property: JsonPropertyName("seconds")] double Seconds,
    [property: JsonPropertyName("messages_per_second")] double MessagesPerSecond,
    [property: JsonPropertyName("p50_ms")] double P50Ms,
    [property: JsonPropertyName("p95_ms")] double P95Ms,
    [property: JsonPropertyName("p99_ms")] double P99Ms,
    [property: JsonPropertyName("errors")] long Errors,
    [property: JsonPropertyName("cpu_s_per_1k_client")] double CpuClientPer1K,
    [property: JsonPropertyName("cpu_s_per_1k_silo")] double CpuSiloPer1K,
    [property: JsonPropertyName("cpu_s_per_1k_postgres")] double CpuPostgresPer1K,
    [property: JsonPropertyName("silo_peak_mib")] double SiloPeakMiB,
    [property: JsonPropertyName("wal_bytes_per_message")] double WalBytesPerMessage,
    [property: JsonPropertyName("offered_per_second")] double? OfferedPerSecond = null,
    [property: JsonPropertyName("projection_lag_p50_ms")] double? ProjectionLagP50Ms = null,
    [property: JsonPropertyName("projection_lag_p99_ms")] double? ProjectionLagP99Ms = null,
    [property: JsonPropertyName("repeat")] int Repeat = 1);
