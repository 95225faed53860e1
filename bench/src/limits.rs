//! Limits on everything the load generator holds, with units in the names.

/// Producer or consumer threads per run: each one owns a librdkafka client (and its threads).
pub const CLIENTS_PER_RUN_MAX: usize = 64;
/// Topics per run.
pub const TOPICS_MAX: usize = 64;
/// Partitions per topic (OMB's largest standard workload has 100).
pub const PARTITIONS_PER_TOPIC_MAX: usize = 10_000;
/// The payload header (send timestamp, producer, sequence) needs this many bytes.
pub const MESSAGE_SIZE_MIN_BYTES: usize = payload_header_bytes();
/// Kafka's default `message.max.bytes` is about 1 MiB.
pub const MESSAGE_SIZE_MAX_BYTES: usize = 1 << 20;
/// Measured run time.
pub const TEST_DURATION_MAX_S: u64 = 3_600;
/// Backlog a drain workload may build first.
pub const BACKLOG_MAX_BYTES: u64 = 64 << 30;
/// How long producers may flush and consumers catch up after the measured phase.
pub const GRACE_MAX_S: u64 = 10;
/// Bytes librdkafka may queue per producer (its default is 1 GiB).
pub const PRODUCER_QUEUE_MAX_KIB: u64 = 64 * 1024;
/// Delivery-report events a producer serves at a time before it sends again: one event per
/// produced batch, so this many batches' reports (a bound on the time taken from sending).
pub const DELIVERY_REPORT_EVENTS_PER_SERVE_MAX: usize = 1024;
/// Bytes of pre-fetched messages one consumer may hold across all its partitions.
pub const CONSUMER_QUEUE_TOTAL_MAX_KIB: u64 = 64 * 1024;
/// Per-partition fetch size a consumer may ask for (the prefetch queue must hold one).
pub const MAX_PARTITION_FETCH_MAX_BYTES: u64 = 64 << 20;
/// Keys the round-robin key distributor cycles through (OMB uses a fixed list too).
pub const ROUND_ROBIN_KEYS: u64 = 10_000;
/// Latencies above this are recorded as this (histograms have a fixed range).
pub const LATENCY_MAX_US: u64 = 60_000_000;
/// Time to wait for topic creation or deletion, and for a profiler to start or stop.
pub const ADMIN_TIMEOUT_S: u64 = 30;

const fn payload_header_bytes() -> usize {
    crate::payload::HEADER_BYTES
}
