//! The log cleaner for `cleanup.policy=compact` (and `compact,delete`): keeps, per key, only
//! the latest record of a partition log, as Kafka's `LogCleaner` does.
//!
//! A pass has three steps, so that the owner can hold its lock only where it must:
//!
//! 1. [`PartitionLog::plan_clean`](crate::partition_log::PartitionLog::plan_clean) (sync,
//!    `&self`) takes the segments that may be cleaned — every segment before the first
//!    *uncleanable* one: the active segment, or an earlier one holding records younger than
//!    `min.compaction.lag.ms` — with their files held open, and the *dirty section*: from the
//!    first uncleaned offset (the cleaner's in-memory checkpoint, the log start after an open)
//!    to that first uncleanable offset.
//! 2. [`CleanPlan::build`] (async, no access to the log at all) builds the **offset map**
//!    (key → latest offset) over the dirty section, bounded by `dedupe_buffer_bytes`: when the
//!    next batch's new keys would not fit, the map stops before that batch and only offsets
//!    below it count as cleaned (a second pass continues from there; a single batch is always
//!    taken, so a pass always progresses). It then rewrites every segment that begins below the
//!    map's end — the already-clean ones too, whose keys may have newer values in the dirty
//!    section — into `<base>.log.cleaned`, one output per segment with the same base offset
//!    (segments are not merged yet). It yields to the shard between batches.
//! 3. [`PartitionLog::install_cleaned_step`](crate::partition_log::PartitionLog::install_cleaned_step)
//!    (`&mut self`, one segment per call) swaps the outputs in; see there for the crash
//!    contract.
//!
//! What a rewrite keeps, record by record: a record without a key; a record whose key is not
//! in the map or whose offset is at or after the map's offset for it (so records past the
//! map's end always stay); except a **tombstone** (a keyed record with a null value) below the
//! map's end whose timestamp is more than `delete.retention.ms` before the cleaning time
//! (`now_ms - record timestamp > delete.retention.ms`; the record timestamp is the producer's
//! `CreateTime` or the broker's `LogAppendTime`). Kafka measures that horizon from the
//! segment's last-modified time or, since KIP-534, from a horizon stamped in the batch on the
//! first pass; the record timestamp is the simple rule used here.
//!
//! A batch is kept byte for byte when all its records stay, dropped when none does, and
//! otherwise rebuilt with the same base offset *and last offset* (so offsets and sequences are
//! unchanged: gaps, never reordering; the producer's last sequence does not shrink — Kafka's
//! `overrideLastOffset`), codec, partition leader epoch, producer id / epoch / base sequence,
//! timestamp type and record timestamps, with a fresh CRC. A batch that loses every record
//! but is an idempotent producer's last batch (per the producer state the owner hands to
//! [`CleanPlan::retain_producer_last_batches`]) is kept as Kafka's *empty batch* — the header
//! with no records — so producer state rebuilt from the log after a restart still knows that
//! producer's epoch and last sequence and still deduplicates a retry of that batch.
//!
//! I/O is throttled by a [`Throttler`] (`log.cleaner.io.max.bytes.per.second`): every byte
//! read and written is reported, and the cleaner naps on the shard's timer when it goes too
//! fast. Control and transactional batches
//! are kept as they are and do not enter the map (transaction markers and aborted data are
//! handled once transactions exist), as are batches whose records cannot be decoded.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use glommio::io::{BufferedFile, OpenOptions};

use crate::batch_builder::RecordBatchBuilder;
use crate::index_file::write_all_at;
use crate::log_error::{LogError, Result};
use crate::log_segment::{remove_if_exists, segment_file_name, LOG_FILE_SUFFIX};
use crate::partition_log::{CLEANED_FILE_SUFFIX, SWAP_FILE_SUFFIX};
use crate::record_batch::{batch_size_at, RecordBatch, TimestampType, LOG_OVERHEAD};
use crate::records::Records;
use crate::throttler::Throttler;

/// Kafka's `log.cleaner.dedupe.buffer.size` default.
pub const DEFAULT_DEDUPE_BUFFER_BYTES: usize = 128 << 20;
/// What one offset-map entry costs besides its key bytes: the boxed key's pointer and length,
/// the offset, the hash table's control byte and slack, the allocation's header.
pub const MAP_ENTRY_OVERHEAD_BYTES: usize = 48;
/// Bytes read at a time from a segment being cleaned.
const READ_WINDOW_BYTES: usize = 1 << 20;
/// Output bytes gathered before one write.
const WRITE_CHUNK_BYTES: usize = 1 << 20;
/// The largest decompressed records section the cleaner inflates; a larger batch is kept as
/// it is (and its keys stay out of the map, which only makes the cleaner keep more).
const MAX_UNCOMPRESSED_BATCH_BYTES: usize = 64 << 20;

/// What a cleaning pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanStats {
    /// Segments rewritten and swapped in.
    pub segments_cleaned: usize,
    /// Keys in the offset map.
    pub map_keys: usize,
    /// The map filled before the end of the dirty section: another pass is needed.
    pub map_full: bool,
    pub records_read: u64,
    pub records_removed: u64,
    pub tombstones_removed: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// The first offset not yet cleaned after this pass.
    pub cleaned_up_to: i64,
    /// The log changed under the pass (a segment deleted or truncated): nothing was swapped.
    pub aborted: bool,
    /// The first dirty offset the pass started from (the cleaner checkpoint or the log start).
    pub dirty_start: i64,
    /// Batches that lost every record but were kept empty as a producer's last batch.
    pub empty_batches_kept: u64,
}

/// A sealed segment as the plan saw it; its file stays open for the pass.
#[derive(Debug)]
pub(crate) struct SourceSegment {
    pub base_offset: i64,
    pub next_offset: i64,
    pub size_bytes: u64,
    pub file: Rc<BufferedFile>,
}

/// What [`CleanPlan::build`] cleans. Holds no reference to the log.
#[derive(Debug)]
pub struct CleanPlan {
    pub(crate) dir: PathBuf,
    pub(crate) sources: Vec<SourceSegment>,
    pub(crate) dirty_start: i64,
    pub(crate) first_uncleanable: i64,
    pub(crate) now_ms: i64,
    pub(crate) delete_retention_ms: i64,
    pub(crate) dedupe_buffer_bytes: usize,
    /// Producer id → last offset of its last batch: such a batch is never dropped whole.
    pub(crate) producer_last_offsets: HashMap<i64, i64>,
}

/// One rewritten segment waiting in its `.cleaned` file.
#[derive(Debug)]
pub(crate) struct CleanedOutput {
    pub base_offset: i64,
    pub source_size_bytes: u64,
}

/// The outcome of [`CleanPlan::build`]: `.cleaned` files for
/// [`PartitionLog::install_cleaned`](crate::partition_log::PartitionLog::install_cleaned).
#[derive(Debug)]
pub struct CleanedSegments {
    pub(crate) dir: PathBuf,
    /// Outputs not yet swapped in, lowest offset first.
    pub(crate) outputs: Vec<CleanedOutput>,
    pub(crate) stats: CleanStats,
    /// Outputs swapped in so far.
    pub(crate) installed: usize,
}

pub(crate) fn cleaned_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{}{CLEANED_FILE_SUFFIX}", segment_file_name(base_offset, LOG_FILE_SUFFIX)))
}

pub(crate) fn swap_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{}{SWAP_FILE_SUFFIX}", segment_file_name(base_offset, LOG_FILE_SUFFIX)))
}

impl CleanedSegments {
    /// Removes the `.cleaned` files (the pass is abandoned).
    pub(crate) async fn discard(&self) -> Result<()> {
        for output in &self.outputs {
            remove_if_exists(&cleaned_path(&self.dir, output.base_offset)).await?;
        }
        Ok(())
    }
}

/// Key → latest offset over the dirty section, within a byte budget.
struct OffsetMap {
    map: HashMap<Box<[u8]>, i64>,
    used_bytes: usize,
    budget_bytes: usize,
}

impl OffsetMap {
    fn entry_bytes(key: &[u8]) -> usize {
        key.len() + MAP_ENTRY_OVERHEAD_BYTES
    }
}

impl CleanPlan {
    /// Tells the pass which batch is each idempotent producer's last: `(producer id, last
    /// offset of that batch)`. Kafka takes these from its producer state when a pass starts.
    pub fn retain_producer_last_batches(&mut self, last_batches: impl IntoIterator<Item = (i64, i64)>) {
        self.producer_last_offsets.extend(last_batches);
    }

    /// [`CleanPlan::build_throttled`] without an I/O limit.
    pub async fn build(self) -> Result<CleanedSegments> {
        self.build_throttled(&mut Throttler::unlimited()).await
    }

    /// Builds the offset map and writes the `.cleaned` files, reporting every byte read and
    /// written to `throttler`. On error, the `.cleaned` files written so far are removed (an
    /// open would remove them too).
    pub async fn build_throttled(self, throttler: &mut Throttler) -> Result<CleanedSegments> {
        let mut stats = CleanStats { dirty_start: self.dirty_start, ..CleanStats::default() };
        let mut map =
            OffsetMap { map: HashMap::new(), used_bytes: 0, budget_bytes: self.dedupe_buffer_bytes };
        let map_end = self.build_offset_map(&mut map, &mut stats, throttler).await?;
        stats.map_keys = map.map.len();
        stats.cleaned_up_to = map_end;
        let mut cleaned = CleanedSegments {
            dir: self.dir.clone(),
            outputs: Vec::new(),
            stats: CleanStats::default(),
            installed: 0,
        };
        if map_end <= self.dirty_start {
            cleaned.stats = stats;
            return Ok(cleaned);
        }
        for source in self.sources.iter().filter(|s| s.base_offset < map_end) {
            cleaned.outputs.push(CleanedOutput {
                base_offset: source.base_offset,
                source_size_bytes: source.size_bytes,
            });
            if let Err(e) = self.clean_segment(source, &map, map_end, &mut stats, throttler).await {
                let _ = cleaned.discard().await;
                return Err(e);
            }
        }
        stats.segments_cleaned = cleaned.outputs.len();
        cleaned.stats = stats;
        Ok(cleaned)
    }

    /// Fills `map` from the dirty section; returns the offset it covers up to (exclusive).
    async fn build_offset_map(
        &self,
        map: &mut OffsetMap,
        stats: &mut CleanStats,
        throttler: &mut Throttler,
    ) -> Result<i64> {
        let mut map_end = self.dirty_start;
        for source in self.sources.iter().filter(|s| s.next_offset > self.dirty_start) {
            let mut batches = BatchReader::new(source);
            while let Some(bytes) = batches.next(throttler).await? {
                let batch =
                    RecordBatch::parse_lenient(&bytes).map_err(|e| corrupt(source, &e.to_string()))?;
                if batch.last_offset() < self.dirty_start {
                    continue;
                }
                if batch.is_control() || batch.is_transactional() {
                    map_end = batch.next_offset();
                    continue;
                }
                let Ok(records) = Records::decode(batch, MAX_UNCOMPRESSED_BATCH_BYTES) else {
                    map_end = batch.next_offset();
                    continue;
                };
                let Ok(all) = records.iter().collect::<std::result::Result<Vec<_>, _>>() else {
                    map_end = batch.next_offset();
                    continue;
                };
                let new_bytes: usize = all
                    .iter()
                    .filter_map(|r| r.key)
                    .filter(|k| !map.map.contains_key(*k))
                    .map(OffsetMap::entry_bytes)
                    .sum();
                if map.used_bytes + new_bytes > map.budget_bytes && !map.map.is_empty() {
                    stats.map_full = true;
                    return Ok(map_end);
                }
                for record in &all {
                    if let Some(key) = record.key {
                        if let Some(offset) = map.map.get_mut(key) {
                            *offset = record.offset;
                        } else {
                            map.used_bytes += OffsetMap::entry_bytes(key);
                            map.map.insert(key.into(), record.offset);
                        }
                    }
                }
                map_end = batch.next_offset();
                glommio::yield_if_needed().await;
            }
        }
        Ok(self.first_uncleanable)
    }

    /// Rewrites one segment into its `.cleaned` file and fdatasyncs it.
    async fn clean_segment(
        &self,
        source: &SourceSegment,
        map: &OffsetMap,
        map_end: i64,
        stats: &mut CleanStats,
        throttler: &mut Throttler,
    ) -> Result<()> {
        let path = cleaned_path(&self.dir, source.base_offset);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .buffered_open(&path)
            .await?;
        let result = self.write_cleaned(source, map, map_end, stats, &file, throttler).await;
        let synced = match result {
            Ok(()) => file.fdatasync().await.map_err(LogError::from),
            Err(e) => Err(e),
        };
        file.close().await?;
        synced
    }

    async fn write_cleaned(
        &self,
        source: &SourceSegment,
        map: &OffsetMap,
        map_end: i64,
        stats: &mut CleanStats,
        file: &BufferedFile,
        throttler: &mut Throttler,
    ) -> Result<()> {
        stats.bytes_before += source.size_bytes;
        let mut out = Vec::new();
        let mut position = 0u64;
        let mut batches = BatchReader::new(source);
        while let Some(bytes) = batches.next(throttler).await? {
            let batch = RecordBatch::parse_lenient(&bytes).map_err(|e| corrupt(source, &e.to_string()))?;
            match self.clean_batch(batch, map, map_end, stats) {
                Kept::Whole => out.extend_from_slice(&bytes),
                Kept::Nothing => {}
                Kept::Rebuilt(rebuilt) => out.extend_from_slice(&rebuilt),
            }
            if out.len() >= WRITE_CHUNK_BYTES {
                let chunk = std::mem::take(&mut out);
                let len = chunk.len() as u64;
                write_all_at(file, chunk, position).await?;
                position += len;
                throttler.maybe_throttle(len).await;
            }
            glommio::yield_if_needed().await;
        }
        if !out.is_empty() {
            let len = out.len() as u64;
            write_all_at(file, out, position).await?;
            position += len;
            throttler.maybe_throttle(len).await;
        }
        if position > i32::MAX as u64 {
            return Err(corrupt(source, "the cleaned segment would exceed i32::MAX bytes"));
        }
        stats.bytes_after += position;
        Ok(())
    }

    fn clean_batch(
        &self,
        batch: RecordBatch<'_>,
        map: &OffsetMap,
        map_end: i64,
        stats: &mut CleanStats,
    ) -> Kept {
        if batch.is_control() || batch.is_transactional() {
            return Kept::Whole;
        }
        let Ok(records) = Records::decode(batch, MAX_UNCOMPRESSED_BATCH_BYTES) else { return Kept::Whole };
        let Ok(all) = records.iter().collect::<std::result::Result<Vec<_>, _>>() else { return Kept::Whole };
        stats.records_read += all.len() as u64;
        let mut keep = Vec::with_capacity(all.len());
        for record in &all {
            let retained = match record.key {
                None => true,
                Some(key) => {
                    let latest = map.map.get(key).is_none_or(|&latest| record.offset >= latest);
                    let expired_tombstone = record.value.is_none()
                        && record.offset < map_end
                        && self.now_ms.saturating_sub(record.timestamp) > self.delete_retention_ms;
                    if latest && expired_tombstone {
                        stats.tombstones_removed += 1;
                    }
                    latest && !expired_tombstone
                }
            };
            keep.push(retained);
        }
        let kept = keep.iter().filter(|k| **k).count();
        stats.records_removed += (all.len() - kept) as u64;
        if kept == all.len() {
            return Kept::Whole;
        }
        let producers_last = batch.producer_id() >= 0
            && self.producer_last_offsets.get(&batch.producer_id()) == Some(&batch.last_offset());
        if kept == 0 && !producers_last {
            return Kept::Nothing;
        }
        if kept == 0 {
            stats.empty_batches_kept += 1;
        }
        let mut builder = RecordBatchBuilder::new(batch.base_offset(), batch.compression())
            .partition_leader_epoch(batch.partition_leader_epoch())
            .producer(batch.producer_id(), batch.producer_epoch(), batch.base_sequence())
            .keep_last_offset(batch.last_offset(), batch.max_timestamp());
        if batch.timestamp_type() == TimestampType::LogAppendTime {
            builder = builder.log_append_time(batch.max_timestamp());
        }
        for (record, _) in all.iter().zip(&keep).filter(|(_, k)| **k) {
            if builder.append(record).is_err() {
                return Kept::Whole;
            }
        }
        match builder.build() {
            Ok(bytes) => Kept::Rebuilt(bytes),
            Err(_) => Kept::Whole,
        }
    }
}

enum Kept {
    Whole,
    Nothing,
    Rebuilt(Vec<u8>),
}

fn corrupt(source: &SourceSegment, reason: &str) -> LogError {
    let message = format!("cleaning the segment at offset {}: {reason}", source.base_offset);
    LogError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, message))
}

/// Reads the batches of a sealed segment in windows, each batch as its own buffer.
struct BatchReader<'s> {
    source: &'s SourceSegment,
    position: u64,
    window_start: u64,
    window: Vec<u8>,
    /// Bytes read from the file not yet reported to the throttler.
    unreported_bytes: u64,
}

impl<'s> BatchReader<'s> {
    fn new(source: &'s SourceSegment) -> Self {
        BatchReader { source, position: 0, window_start: 0, window: Vec::new(), unreported_bytes: 0 }
    }

    /// The next batch; window reads are reported to `throttler` (and napped on) first.
    async fn next(&mut self, throttler: &mut Throttler) -> Result<Option<Vec<u8>>> {
        if self.position >= self.source.size_bytes {
            return Ok(None);
        }
        if self.unreported_bytes > 0 {
            throttler.maybe_throttle(std::mem::take(&mut self.unreported_bytes)).await;
        }
        let position = self.position;
        let prefix = self.bytes(position, LOG_OVERHEAD).await?;
        let Some(size) = batch_size_at(prefix) else {
            return Err(corrupt(self.source, &format!("bad batch length at position {position}")));
        };
        let bytes = self.bytes(position, size).await?.to_vec();
        self.position += size as u64;
        Ok(Some(bytes))
    }

    async fn bytes(&mut self, position: u64, len: usize) -> Result<&[u8]> {
        let end = position + len as u64;
        if end > self.source.size_bytes {
            return Err(corrupt(self.source, &format!("batch at position {position} extends past the end")));
        }
        let window_end = self.window_start + self.window.len() as u64;
        if position < self.window_start || end > window_end {
            let want = (len.max(READ_WINDOW_BYTES) as u64).min(self.source.size_bytes - position) as usize;
            let read = self.source.file.read_at(position, want).await?;
            if read.len() < len {
                return Err(corrupt(self.source, &format!("short read at position {position}")));
            }
            self.window = read.to_vec();
            self.window_start = position;
            self.unreported_bytes += self.window.len() as u64;
        }
        let at = (position - self.window_start) as usize;
        Ok(&self.window[at..at + len])
    }
}
