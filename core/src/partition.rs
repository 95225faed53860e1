//! `Partition`: one partition led by this shard — its log, its idempotent-producer state and
//! the wake-up for fetches waiting on new data.
//!
//! Everything here lives on one shard (invariant 1). The log sits behind a shard-local async
//! `RwLock` only because its operations await io_uring: a produce holds the write side for the
//! length of one append so two connections producing to one partition cannot interleave, and
//! fetches read concurrently. No lock crosses a core.

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;
use glommio::sync::RwLock;
use shardlog_net::KafkaError;
use shardlog_storage::log_config::LogConfig;
use shardlog_storage::partition_log::{PartitionLog, ReadInfo, TimestampAndOffset};
use shardlog_storage::producer_state::{snapshot_file_name, ProducerCheck, ProducerStateManager};
use shardlog_storage::record_batch::BatchIter;
use shardlog_storage::records::Records;
use shardlog_storage::throttler::Throttler;

use crate::errors::{log_error, producer_error};

/// The answer to one partition of a produce request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceResult {
    pub base_offset: i64,
    /// Records this append added (0 for a duplicate answered from the producer state).
    pub appended_records: i64,
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
}

pub struct Partition {
    pub topic: String,
    pub topic_id: [u8; 16],
    pub index: i32,
    pub leader_epoch: Cell<i32>,
    dir: PathBuf,
    log: RwLock<PartitionLog>,
    producers: RefCell<ProducerStateManager>,
    /// Bumped on every append; fetches waiting for data listen on it.
    appended: event_listener::Event,
    high_watermark: Cell<i64>,
    log_start_offset: Cell<i64>,
    /// The log cleaner's progress, for `cleaner-offset-checkpoint`: offsets below it are
    /// clean. A copy of the log's value, readable without the lock.
    first_uncleaned_offset: Cell<i64>,
}

/// What the shard's log cleaner brings to a partition's maintenance: the offset map's bound
/// (`log.cleaner.dedupe.buffer.size`) and the shard's I/O throttle
/// (`log.cleaner.io.max.bytes.per.second`), shared by every partition of the shard as Kafka
/// shares one throttler among its cleaner threads.
pub struct CleanerResources {
    pub dedupe_buffer_bytes: usize,
    pub throttler: Throttler,
}

impl Partition {
    /// Opens (creating) `<log_dir>/<topic>-<index>` and rebuilds producer state from the log.
    pub async fn open(
        log_dir: &Path,
        topic: &str,
        topic_id: [u8; 16],
        index: i32,
        leader_epoch: i32,
        config: LogConfig,
        recovery_point: Option<i64>,
    ) -> Result<Rc<Partition>, KafkaError> {
        let dir = log_dir.join(format!("{topic}-{index}"));
        let log = PartitionLog::open(&dir, config, recovery_point, None).await.map_err(|e| {
            tracing::error!("cannot open {}: {e}", dir.display());
            KafkaError::KafkaStorageError
        })?;
        let producers = rebuild_producer_state(&dir, &log).await;
        let partition = Partition {
            topic: topic.to_string(),
            topic_id,
            index,
            leader_epoch: Cell::new(leader_epoch),
            dir,
            high_watermark: Cell::new(log.log_end_offset()),
            log_start_offset: Cell::new(log.log_start_offset()),
            first_uncleaned_offset: Cell::new(log.first_uncleaned_offset()),
            log: RwLock::new(log),
            producers: RefCell::new(producers),
            appended: event_listener::Event::new(),
        };
        // One replica: everything in the log is committed.
        {
            let mut log = partition.log.write().await.map_err(|_| KafkaError::KafkaStorageError)?;
            let end = log.log_end_offset();
            log.set_high_watermark(end);
        }
        Ok(Rc::new(partition))
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.get()
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset.get()
    }

    /// The first offset the log cleaner has not cleaned (the `cleaner-offset-checkpoint`
    /// entry).
    pub fn first_uncleaned_offset(&self) -> i64 {
        self.first_uncleaned_offset.get()
    }

    /// Restores the cleaner's progress from `cleaner-offset-checkpoint` after an open, so a
    /// restart does not clean the whole log again (out-of-range values are reset as Kafka
    /// does, see `PartitionLog::set_first_uncleaned_offset`).
    pub async fn restore_cleaner_checkpoint(&self, offset: i64) {
        if let Ok(mut log) = self.log.write().await {
            log.set_first_uncleaned_offset(offset);
            self.first_uncleaned_offset.set(log.first_uncleaned_offset());
        }
    }

    /// A listener that fires on the next append; take it before reading, so an append between
    /// the read and the wait is not missed.
    pub fn listen_for_append(&self) -> event_listener::EventListener {
        self.appended.listen()
    }

    /// Appends a producer's record set as leader. Idempotent batches are checked against the
    /// producer state first: a retry of a batch already in the log is answered with its
    /// original offsets and appended again never.
    pub async fn append(&self, records: Bytes, now_ms: i64) -> Result<ProduceResult, KafkaError> {
        let mut log = self.log.write().await.map_err(|_| KafkaError::KafkaStorageError)?;
        let max_batch_bytes = log.config().max_message_bytes as usize;
        if log.config().cleanup_policy.compact && !every_record_has_a_key(&records, max_batch_bytes) {
            // Kafka: "Compacted topic cannot accept message without key".
            return Err(KafkaError::InvalidRecord);
        }
        let mut idempotent_batches = 0;
        let mut batch_count = 0;
        for item in BatchIter::new(&records, max_batch_bytes) {
            let (_, batch) = item.map_err(|e| {
                if e.is_too_large() {
                    KafkaError::MessageTooLarge
                } else {
                    KafkaError::CorruptMessage
                }
            })?;
            batch_count += 1;
            if batch.producer_id() < 0 {
                continue;
            }
            idempotent_batches += 1;
            match self.producers.borrow().check(&batch).map_err(|e| producer_error(&e))? {
                ProducerCheck::Append => {}
                ProducerCheck::Duplicate { first_offset, .. } if batch_count == 1 => {
                    // Kafka answers a duplicate with the offsets it had the first time.
                    return Ok(ProduceResult {
                        base_offset: first_offset,
                        appended_records: 0,
                        log_append_time_ms: -1,
                        log_start_offset: log.log_start_offset(),
                    });
                }
                ProducerCheck::Duplicate { .. } => return Err(KafkaError::DuplicateSequenceNumber),
            }
        }
        let (info, written) = log
            .submit_append(records.clone(), self.leader_epoch.get(), now_ms)
            .await
            .map_err(|e| log_error(&e))?;
        if idempotent_batches > 0 {
            // The log assigned consecutive offsets from `base_offset`, batch by batch.
            let mut producers = self.producers.borrow_mut();
            let mut next_offset = info.base_offset;
            for (_, batch) in BatchIter::new(&records, max_batch_bytes).flatten() {
                producers.record(&batch, next_offset);
                next_offset += batch.last_offset_delta() as i64 + 1;
            }
        }
        // Let other appends to this partition submit while this write completes: that is what
        // keeps several io_uring writes in flight (one write at a time tops out far lower).
        drop(log);
        written.wait().await.map_err(|e| log_error(&e))?;

        let mut log = self.log.write().await.map_err(|_| KafkaError::KafkaStorageError)?;
        if log.flush_due(now_ms) {
            // Group commit: one fsync covers every append that reached the page cache so far.
            log.flush().await.map_err(|e| log_error(&e))?;
        }
        // One replica: what reached the page cache is committed.
        let readable = log.readable_end_offset();
        if readable > log.high_watermark() {
            log.set_high_watermark(readable);
        }
        self.high_watermark.set(log.high_watermark());
        self.log_start_offset.set(log.log_start_offset());
        drop(log);
        self.appended.notify(usize::MAX);
        Ok(ProduceResult {
            base_offset: info.base_offset,
            appended_records: info.last_offset - info.base_offset + 1,
            log_append_time_ms: info.log_append_time_ms.unwrap_or(-1),
            log_start_offset: info.log_start_offset,
        })
    }

    /// Whole batches from `offset` on, below the high watermark.
    pub async fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<ReadInfo, KafkaError> {
        let log = self.log.read().await.map_err(|_| KafkaError::KafkaStorageError)?;
        let high_watermark = log.high_watermark();
        log.read(offset, max_bytes, high_watermark, min_one_batch).await.map_err(|e| log_error(&e))
    }

    pub async fn offset_for_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<TimestampAndOffset>, KafkaError> {
        let log = self.log.read().await.map_err(|_| KafkaError::KafkaStorageError)?;
        log.offset_for_timestamp(timestamp).await.map_err(|e| log_error(&e))
    }

    pub async fn max_timestamp_and_offset(&self) -> Option<TimestampAndOffset> {
        let log = self.log.read().await.ok()?;
        log.max_timestamp_and_offset()
    }

    /// DeleteRecords: advances the log start to `offset` (-1: the high watermark).
    pub async fn delete_records_before(&self, offset: i64, now_ms: i64) -> Result<i64, KafkaError> {
        let mut log = self.log.write().await.map_err(|_| KafkaError::KafkaStorageError)?;
        let target = if offset == -1 { log.high_watermark() } else { offset };
        if target < 0 || target > log.high_watermark() {
            return Err(KafkaError::OffsetOutOfRange);
        }
        let start = log.delete_records_before(target, now_ms).await.map_err(|e| log_error(&e))?;
        self.log_start_offset.set(start);
        Ok(start)
    }

    pub async fn size_bytes(&self) -> u64 {
        match self.log.read().await {
            Ok(log) => log.size_bytes(),
            Err(_) => 0,
        }
    }

    /// Periodic housekeeping: flush when the policy says so, retention, delayed deletes.
    pub async fn maintain(&self, now_ms: i64, retention_due: bool) -> Result<(), KafkaError> {
        let mut log = self.log.write().await.map_err(|_| KafkaError::KafkaStorageError)?;
        if log.flush_due(now_ms) {
            log.flush().await.map_err(|e| log_error(&e))?;
        }
        if retention_due {
            log.delete_segments_for_retention(now_ms).await.map_err(|e| log_error(&e))?;
            self.log_start_offset.set(log.log_start_offset());
        }
        log.remove_deleted_segments(now_ms).await.map_err(|e| log_error(&e))?;
        Ok(())
    }

    /// One log-cleaner pass when `cleanup.policy` includes `compact` and the dirty ratio (or
    /// `max.compaction.lag.ms`) says so. The lock is held only to plan the pass and to swap
    /// each cleaned segment in (one per hold); reading and rewriting the segments runs
    /// unlocked (it yields between batches and naps when throttled), so produce and fetch on
    /// this partition go on meanwhile. If the log changed under the pass (retention deleted
    /// a segment), the rest of the swap is dropped.
    /// Each idempotent producer's last batch is kept (empty if need be), so the producer
    /// state rebuilt from the log after a restart still knows its last sequence. Returns
    /// whether the cleaner's progress moved (the shard then rewrites
    /// `cleaner-offset-checkpoint`).
    pub async fn clean(&self, now_ms: i64, cleaner: &mut CleanerResources) -> Result<bool, KafkaError> {
        let plan = {
            let log = self.log.read().await.map_err(|_| KafkaError::KafkaStorageError)?;
            if !log.clean_due(now_ms) {
                return Ok(false);
            }
            log.plan_clean(now_ms, cleaner.dedupe_buffer_bytes)
        };
        let Some(mut plan) = plan else { return Ok(false) };
        let before = self.first_uncleaned_offset.get();
        plan.retain_producer_last_batches(self.producers.borrow().last_batch_offsets());
        tracing::info!("{}-{}: log cleaner pass started", self.topic, self.index);
        let mut cleaned = plan.build_throttled(&mut cleaner.throttler).await.map_err(|e| log_error(&e))?;
        // One segment swapped per hold of the lock: produce and fetch wait at most for one
        // segment's swap. Bounded: every step swaps or discards at least one output.
        let stats = loop {
            let mut log = self.log.write().await.map_err(|_| KafkaError::KafkaStorageError)?;
            let step = log.install_cleaned_step(&mut cleaned).await.map_err(|e| log_error(&e))?;
            self.first_uncleaned_offset.set(log.first_uncleaned_offset());
            drop(log);
            match step {
                Some(stats) => break stats,
                // Let a produce or fetch that waited for the lock take it first.
                None => futures_lite::future::yield_now().await,
            }
        };
        tracing::info!("{}-{}: log cleaner pass done {stats:?}", self.topic, self.index);
        Ok(self.first_uncleaned_offset.get() != before)
    }

    /// Applies changed topic configs (AlterConfigs) without a restart.
    pub async fn set_config(&self, config: LogConfig) {
        if let Ok(mut log) = self.log.write().await {
            if log.config() != &config {
                if let Err(e) = log.set_config(config) {
                    tracing::warn!("{}-{}: new config refused: {e}", self.topic, self.index);
                }
            }
        }
    }

    /// Flushes and closes the log (clean shutdown) and returns its recovery point and log
    /// start offset for the checkpoint files; later calls fail with a storage error.
    pub async fn close(&self) -> Result<(i64, i64), KafkaError> {
        let mut log = self.log.write().await.map_err(|_| KafkaError::KafkaStorageError)?;
        log.flush().await.map_err(|e| log_error(&e))?;
        // Blocking file I/O is fine here: this runs once, at shutdown.
        if let Err(e) = write_snapshot(&self.dir, log.log_end_offset(), &self.producers.borrow()) {
            tracing::warn!("cannot write the producer snapshot of {}: {e}", self.dir.display());
        }
        let offsets = (log.recovery_point(), log.log_start_offset());
        drop(log);
        let _ = self.log.close();
        Ok(offsets)
    }

    /// Deletes the partition's directory (its topic was deleted), on the executor's blocking
    /// thread: freeing a large log's blocks takes the kernel long (on a file system mounted
    /// with `discard`, each freed extent is discarded synchronously — measured as the shard
    /// stalled in `blkdev_issue_discard` when a 4 GiB topic was deleted), and it must not be
    /// the shard that waits. Kafka, too, deletes logs off its request threads.
    pub async fn delete(&self) {
        if let Ok(mut log) = self.log.write().await {
            // A write still in flight would extend a file again after it is emptied below.
            if let Err(e) = log.drain_writes().await {
                tracing::warn!("{}-{}: writes in flight failed before deletion: {e}", self.topic, self.index);
            }
        }
        let _ = self.log.close();
        let dir = self.dir.clone();
        let removed = glommio::executor().spawn_blocking(move || empty_and_remove_dir(&dir)).await;
        if let Err(e) = removed {
            tracing::warn!("cannot remove {}: {e}", self.dir.display());
        }
    }
}

/// Whether every record of every data batch of `records` has a key, as a compacted topic
/// requires. This is the one record-level look on the produce path, and only for compacted
/// topics (Kafka decompresses there too); batches that do not parse are left to the log's
/// validation.
fn every_record_has_a_key(records: &[u8], max_batch_bytes: usize) -> bool {
    let max_uncompressed_bytes = max_batch_bytes.saturating_mul(16).max(1 << 20);
    BatchIter::new(records, max_batch_bytes).flatten().filter(|(_, batch)| !batch.is_control()).all(
        |(_, batch)| match Records::decode(batch, max_uncompressed_bytes) {
            Ok(decoded) => decoded.iter().all(|r| r.map_or(true, |r| r.key.is_some())),
            Err(_) => true,
        },
    )
}

/// Producer state = the newest `<offset>.snapshot` at or below the log end (written on clean
/// close), then the batch headers of the log after it replayed: the log is the truth. Without
/// a usable snapshot the whole log is replayed.
async fn rebuild_producer_state(dir: &Path, log: &PartitionLog) -> ProducerStateManager {
    let end = log.log_end_offset();
    let (mut producers, mut offset) = match newest_snapshot(dir, end) {
        Some((snapshot_offset, producers)) => (producers, snapshot_offset.max(log.log_start_offset())),
        None => (ProducerStateManager::new(), log.log_start_offset()),
    };
    // Bounded by the log's length: each step moves `offset` past at least one batch.
    while offset < end {
        let Ok(read) = log.read(offset, 8 << 20, end, true).await else { break };
        let mut advanced = false;
        for region in &read.regions {
            let Ok(bytes) = region.read_bytes().await else { return producers };
            for (_, batch) in BatchIter::new(&bytes, usize::MAX).flatten() {
                if batch.producer_id() >= 0 && batch.last_offset() >= offset {
                    producers.replay(&batch);
                }
                if batch.next_offset() > offset {
                    offset = batch.next_offset();
                    advanced = true;
                }
            }
        }
        if !advanced {
            break;
        }
    }
    producers
}

fn newest_snapshot(dir: &Path, log_end_offset: i64) -> Option<(i64, ProducerStateManager)> {
    let mut offsets: Vec<i64> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".snapshot")?.parse().ok())
        .filter(|&o| o <= log_end_offset)
        .collect();
    offsets.sort_unstable();
    let offset = *offsets.last()?;
    let path = dir.join(snapshot_file_name(offset));
    let bytes = std::fs::read(&path).ok()?;
    match ProducerStateManager::decode_snapshot(&bytes) {
        Ok(producers) => Some((offset, producers)),
        Err(e) => {
            tracing::warn!("ignoring {}: {e}", path.display());
            None
        }
    }
}

/// Truncates every file in `dir` to nothing, then removes the directory. The shard still
/// holds the log's files open (they close when the partition is dropped), so an unlink alone
/// would leave freeing their blocks to the shard's last `close`; truncating frees them here.
fn empty_and_remove_dir(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::OpenOptions::new().write(true).open(entry.path())?.set_len(0)?;
        }
    }
    std::fs::remove_dir_all(dir)
}

/// Writes `<offset>.snapshot` (temp file, fsync, rename) and removes older snapshots.
fn write_snapshot(dir: &Path, offset: i64, producers: &ProducerStateManager) -> std::io::Result<()> {
    use std::io::Write;
    let path = dir.join(snapshot_file_name(offset));
    let tmp = path.with_extension("snapshot.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(&producers.encode_snapshot())?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".snapshot") && name != snapshot_file_name(offset) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deleted_partition_dir_is_gone_and_its_still_open_files_hold_no_bytes() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("orders-0");
        std::fs::create_dir(&dir).unwrap();
        let log_path = dir.join("00000000000000000000.log");
        std::fs::write(&log_path, vec![7u8; 64 * 1024]).unwrap();
        std::fs::write(dir.join("00000000000000000000.index"), vec![1u8; 4096]).unwrap();
        // The shard's descriptor, still open while the directory is removed.
        let still_open = std::fs::File::open(&log_path).unwrap();
        empty_and_remove_dir(&dir).unwrap();
        assert!(!dir.exists());
        assert_eq!(still_open.metadata().unwrap().len(), 0, "the blocks were freed by the remover");
    }
}
