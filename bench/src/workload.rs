//! Workload files, after the OpenMessaging Benchmark's (`workloads/*.yaml` there, TOML here).
//!
//! Field names follow OMB with units spelled out (`partitionsPerTopic` → `partitions_per_topic`,
//! `consumerBacklogSizeGB` → `consumer_backlog_bytes`). Client settings that OMB keeps in a
//! separate driver file (acks, compression, batching) live in the workload, so one file says
//! everything a run did. Every field can be overridden on the command line.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::limits;

/// How producers choose record keys (OMB's `keyDistributor`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum KeyDistributor {
    /// No key: librdkafka's partitioner spreads records (sticky per batch).
    None,
    /// Keys cycle through a fixed set, so partitions are hit in a fixed rotation by hash.
    RoundRobin,
    /// A fresh random key per record.
    Random,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    pub name: String,
    #[serde(default = "one")]
    pub topics: usize,
    pub partitions_per_topic: usize,
    pub message_size_bytes: usize,
    #[serde(default = "key_none")]
    pub key_distributor: KeyDistributor,
    #[serde(default = "one")]
    pub producers_per_topic: usize,
    #[serde(default = "one")]
    pub consumers_per_topic: usize,
    /// Target rate over all producers; 0 means closed loop (as fast as the client and broker
    /// allow; each producer keeps its librdkafka queue full).
    #[serde(default)]
    pub producer_rate_msgs_per_s: u64,
    /// When > 0: produce this many bytes with no consumer running, then stop producing and
    /// drain them from the beginning (OMB keeps producing during the drain; stopping gives the
    /// fetch path to itself, which is what a fetch profile needs).
    #[serde(default)]
    pub consumer_backlog_bytes: u64,
    pub test_duration_s: u64,
    #[serde(default = "one_u64")]
    pub warmup_s: u64,
    /// `acks`: "0", "1" or "all".
    #[serde(default = "acks_one")]
    pub acks: String,
    /// `compression.type`: none, gzip, snappy, lz4, zstd.
    #[serde(default = "compression_none")]
    pub compression: String,
    /// librdkafka `batch.size`.
    #[serde(default = "batch_size_default")]
    pub batch_size_bytes: u64,
    /// librdkafka `batch.num.messages`.
    #[serde(default = "batch_num_messages_default")]
    pub batch_num_messages: u64,
    /// librdkafka `linger.ms`.
    #[serde(default = "linger_default")]
    pub linger_ms: u64,
    /// Consumer `fetch.wait.max.ms`: the long-poll bound. A tailing consumer should be woken
    /// by the append, so this mostly bounds how long an idle partition delays others.
    #[serde(default = "fetch_wait_default")]
    pub fetch_wait_max_ms: u64,
    /// Consumer `max.partition.fetch.bytes` (librdkafka's default: 1 MiB).
    #[serde(default = "partition_fetch_default")]
    pub max_partition_fetch_bytes: u64,
    /// Further librdkafka properties, applied last (OMB keeps these in its driver file).
    #[serde(default)]
    pub producer_config: BTreeMap<String, String>,
    #[serde(default)]
    pub consumer_config: BTreeMap<String, String>,
}

fn fetch_wait_default() -> u64 {
    100
}
fn partition_fetch_default() -> u64 {
    1 << 20
}

fn one() -> usize {
    1
}
fn one_u64() -> u64 {
    1
}
fn key_none() -> KeyDistributor {
    KeyDistributor::None
}
fn acks_one() -> String {
    "1".into()
}
fn compression_none() -> String {
    "none".into()
}
fn batch_size_default() -> u64 {
    1_000_000
}
fn batch_num_messages_default() -> u64 {
    10_000
}
fn linger_default() -> u64 {
    5
}

impl Workload {
    pub fn load(path: &Path) -> Result<Workload> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("workload {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Workload> {
        let w: Workload = toml::from_str(text)?;
        Ok(w)
    }

    pub fn producers(&self) -> usize {
        self.topics * self.producers_per_topic
    }

    pub fn consumers(&self) -> usize {
        self.topics * self.consumers_per_topic
    }

    pub fn is_backlog_drain(&self) -> bool {
        self.consumer_backlog_bytes > 0
    }

    /// Checks every field against its limit, so a typo fails before a broker is touched.
    pub fn validate(&self) -> Result<()> {
        if !(1..=limits::TOPICS_MAX).contains(&self.topics) {
            bail!("topics must be 1..={}", limits::TOPICS_MAX);
        }
        if !(1..=limits::PARTITIONS_PER_TOPIC_MAX).contains(&self.partitions_per_topic) {
            bail!("partitions_per_topic must be 1..={}", limits::PARTITIONS_PER_TOPIC_MAX);
        }
        if !(limits::MESSAGE_SIZE_MIN_BYTES..=limits::MESSAGE_SIZE_MAX_BYTES)
            .contains(&self.message_size_bytes)
        {
            bail!(
                "message_size_bytes must be {}..={} (the payload carries a {}-byte timestamp header)",
                limits::MESSAGE_SIZE_MIN_BYTES,
                limits::MESSAGE_SIZE_MAX_BYTES,
                limits::MESSAGE_SIZE_MIN_BYTES
            );
        }
        if self.producers() == 0 {
            bail!("producers_per_topic must be at least 1");
        }
        if self.producers() + self.consumers() > limits::CLIENTS_PER_RUN_MAX {
            bail!("at most {} producers and consumers in all", limits::CLIENTS_PER_RUN_MAX);
        }
        if self.is_backlog_drain() && self.consumers() == 0 {
            bail!("a backlog drain needs consumers_per_topic >= 1");
        }
        if self.consumer_backlog_bytes > limits::BACKLOG_MAX_BYTES {
            bail!("consumer_backlog_bytes must be at most {}", limits::BACKLOG_MAX_BYTES);
        }
        if !(1..=limits::TEST_DURATION_MAX_S).contains(&self.test_duration_s) {
            bail!("test_duration_s must be 1..={}", limits::TEST_DURATION_MAX_S);
        }
        if self.warmup_s > limits::TEST_DURATION_MAX_S {
            bail!("warmup_s must be at most {}", limits::TEST_DURATION_MAX_S);
        }
        if !["0", "1", "all", "-1"].contains(&self.acks.as_str()) {
            bail!("acks must be 0, 1 or all");
        }
        if !["none", "gzip", "snappy", "lz4", "zstd"].contains(&self.compression.as_str()) {
            bail!("compression must be none, gzip, snappy, lz4 or zstd");
        }
        // librdkafka's own ranges, checked here for a clearer message.
        if !(1..=2_147_483_647).contains(&self.batch_size_bytes) {
            bail!("batch_size_bytes must be 1..=2147483647");
        }
        if !(1..=1_000_000).contains(&self.batch_num_messages) {
            bail!("batch_num_messages must be 1..=1000000");
        }
        if self.linger_ms > 900_000 {
            bail!("linger_ms must be at most 900000");
        }
        if self.fetch_wait_max_ms > 300_000 {
            bail!("fetch_wait_max_ms must be at most 300000");
        }
        if !(1..=limits::MAX_PARTITION_FETCH_MAX_BYTES).contains(&self.max_partition_fetch_bytes) {
            bail!("max_partition_fetch_bytes must be 1..={}", limits::MAX_PARTITION_FETCH_MAX_BYTES);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_workload_parses_and_validates() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Workload::load(&path).unwrap().validate().unwrap();
                n += 1;
            }
        }
        assert!(n >= 4, "the four OMB-style workloads are shipped");
    }

    #[test]
    fn limits_are_enforced() {
        let base = "name='x'\npartitions_per_topic=1\nmessage_size_bytes=100\ntest_duration_s=1\n";
        Workload::parse(base).unwrap().validate().unwrap();
        let small = base.replace("=100", "=8");
        assert!(Workload::parse(&small).unwrap().validate().is_err());
        assert!(Workload::parse(&format!("{base}typo=1\n")).is_err());
        assert!(Workload::parse(&format!("{base}acks='2'\n")).unwrap().validate().is_err());
    }
}
