//! Our own Kafka client for the bench scenarios (`--client native`), so that no result rests
//! on librdkafka alone and the broker can be pushed beyond what librdkafka's per-message CPU
//! leaves of a small machine.
//!
//! It speaks the protocol through `shardlog-cli`'s blocking client (`kafka-protocol`'s
//! codecs) and builds and walks magic-2 batches with `shardlog-storage`: the producer batches
//! per partition like librdkafka (`batch_size_bytes`, `batch_num_messages`, `linger_ms`) and
//! keeps up to [`IN_FLIGHT_PER_CONNECTION_MAX`] Produce requests in flight per leader; the
//! consumer sends Fetch to each leader of its assigned partitions (no group) and counts
//! records from batch headers. Both fill the same [`crate::producer::ProducerStats`] and
//! [`crate::consumer::ConsumerStats`] as the librdkafka clients, so a run's JSON has one shape
//! whichever client moved the records.

pub mod consumer;
pub mod producer;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, Result};
use shardlog_cli::admin;

use crate::limits;

/// Produce requests one connection may have unanswered: Kafka's Java producer's
/// `max.in.flight.requests.per.connection` default, and librdkafka's bound when it keeps
/// order (idempotence). Closed-loop back-pressure comes from this bound alone.
pub const IN_FLIGHT_PER_CONNECTION_MAX: usize = 5;
/// Produce v9: flexible versions, the newest the console producer uses too.
pub const PRODUCE_V: i16 = 9;
/// Fetch v12: topics by name (v13 switches to topic ids).
pub const FETCH_V: i16 = 12;
/// A Fetch response's byte bound (`fetch.max.bytes`, Kafka's default 50 MiB); below the
/// client's frame limit so a full response is always readable.
pub const FETCH_MAX_BYTES: i32 = 52_428_800;
/// Bytes a compressed batch may inflate to when it is decoded for latency.
pub const UNCOMPRESSED_MAX_BYTES: usize = 64 << 20;

/// How long one request (connect, write, or wait for an answer) may take before the
/// connection is given up.
pub fn io_timeout() -> Duration {
    Duration::from_secs(limits::GRACE_MAX_S)
}

/// A topic's partitions with their leader's `host:port`, sorted by partition.
pub fn partition_leaders(bootstrap: &str, topic: &str) -> Result<Vec<(i32, String)>> {
    let mut client = admin::connect_bootstrap(bootstrap, io_timeout())?;
    let md = admin::metadata(&mut client, Some(&[topic.to_string()]))?;
    let nodes: BTreeMap<i32, String> = admin::node_addresses(&md);
    let parts = admin::partition_leaders(&md, topic)
        .ok_or_else(|| anyhow!("topic {topic} is not in the metadata"))?;
    parts
        .into_iter()
        .map(|(p, leader)| {
            let addr =
                nodes.get(&leader).ok_or_else(|| anyhow!("{topic}-{p}: leader {leader} has no address"))?;
            Ok((p, addr.clone()))
        })
        .collect()
}
