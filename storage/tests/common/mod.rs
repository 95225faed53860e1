//! Helpers shared by the partition-log tests: an executor to run async test bodies on, and
//! producer batches built with the crate's `RecordBatchBuilder`.
#![allow(dead_code)] // each test binary uses a different subset

use std::future::Future;
use std::path::Path;

use shardlog_storage::batch_builder::RecordBatchBuilder;
use shardlog_storage::log_config::LogConfig;
use shardlog_storage::partition_log::{PartitionLog, ReadInfo};
use shardlog_storage::record_batch::{BatchIter, Compression};

pub const TS: i64 = 1_700_000_000_000;

/// Runs `body` to completion on a fresh glommio executor.
pub fn run<F, Fut>(body: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    glommio::LocalExecutorBuilder::default().spawn(body).expect("executor").join().expect("test body");
}

/// A producer's batch (offsets from 0, leader epoch -1 as clients send it) of `count`
/// records whose values are `value_bytes` bytes derived from `seed`, at `timestamp_ms`.
pub fn batch(count: usize, value_bytes: usize, timestamp_ms: i64, seed: u8) -> Vec<u8> {
    let mut builder = RecordBatchBuilder::new(0, Compression::None).partition_leader_epoch(-1);
    for i in 0..count {
        let value: Vec<u8> = (0..value_bytes).map(|j| seed.wrapping_add((i * 7 + j) as u8)).collect();
        builder.push(timestamp_ms + i as i64, None, Some(&value), &[]).expect("push");
    }
    builder.build().expect("build")
}

/// A config with small segments and indexes so tests roll and index often.
pub fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        segment_index_bytes: 120,
        index_interval_bytes: 100,
        file_delete_delay_ms: 0,
        ..LogConfig::default()
    }
}

pub async fn read_all(info: &ReadInfo) -> Vec<u8> {
    let mut bytes = Vec::new();
    for region in &info.regions {
        bytes.extend(region.read_bytes().await.expect("region bytes"));
    }
    bytes
}

/// `(base offset, last offset)` of each batch of a record set.
pub fn batch_offsets(bytes: &[u8]) -> Vec<(i64, i64)> {
    BatchIter::new(bytes, usize::MAX)
        .map(|b| b.expect("stored batch parses").1)
        .map(|b| (b.base_offset(), b.last_offset()))
        .collect()
}

pub async fn open(dir: &Path, config: LogConfig, recovery_point: Option<i64>) -> PartitionLog {
    PartitionLog::open(dir, config, recovery_point, None).await.expect("open")
}

/// Names of the files in `dir`, sorted.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
